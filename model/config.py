"""The model's configuration: the schema that checkpoints carry so a model rebuilds from its file alone."""
from dataclasses import dataclass


@dataclass
class ModelConfig:
    """CDVD-TSP hyper-parameters. Defaults are the paper's and the official release's.

    Attributes:
        stages: T, the number of cascade stages; the model reads 2T + 1 frames per output frame.
        features: restoration-net channels at full resolution (2x and 4x at the lower scales).
        resblocks: residual blocks per scale of the restoration net.
    """

    stages: int = 2
    features: int = 32
    resblocks: int = 3

    def __post_init__(self) -> None:
        for name in ("stages", "features", "resblocks"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"model.{name} must be a positive integer, got {value!r}")

    @property
    def window(self) -> int:
        """Frames the model reads per output frame: 2T + 1."""
        return 2 * self.stages + 1
