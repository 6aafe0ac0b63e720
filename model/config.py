"""The model's configuration: the schema that checkpoints carry so a model rebuilds from its file alone."""
from dataclasses import dataclass


@dataclass
class ModelConfig:
    """CDVD-TSP hyper-parameters. Defaults are the paper's and the official release's.

    Attributes:
        stages: T, the number of cascade stages; the model reads 2T + 1 frames per output frame.
        features: restoration-net channels at full resolution (2x and 4x at the lower scales).
        resblocks: residual blocks per scale of the restoration net.
        residual: the restoration net predicts a correction added to the (unwarped) centre frame instead of
            the frame itself. Not in the paper or the official release (official checkpoints load with it
            off); the project's default checkpoint uses it so that a short training starts from identity.
    """

    stages: int = 2
    features: int = 32
    resblocks: int = 3
    residual: bool = False

    def __post_init__(self) -> None:
        for name in ("stages", "features", "resblocks"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"model.{name} must be a positive integer, got {value!r}")
        if not isinstance(self.residual, bool):
            raise ValueError(f"model.residual must be true or false, got {self.residual!r}")

    @property
    def window(self) -> int:
        """Frames the model reads per output frame: 2T + 1."""
        return 2 * self.stages + 1
