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
        antisymmetric_flow: PWC-Net's flow from a to b taken as (F(a, b) - F(b, a)) / 2, both directions
            decoded in one batch: whatever the net says alike in both directions (a bias, a frame
            against itself) cancels. Not in the paper or the official release (off by default, as
            published); it costs a second pass of the flow decoders, not of the feature pyramids.
    """

    stages: int = 2
    features: int = 32
    resblocks: int = 3
    residual: bool = False
    antisymmetric_flow: bool = False

    def __post_init__(self) -> None:
        for name in ("stages", "features", "resblocks"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"model.{name} must be a positive integer, got {value!r}")
        for name in ("residual", "antisymmetric_flow"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"model.{name} must be true or false, got {getattr(self, name)!r}")

    @property
    def window(self) -> int:
        """Frames the model reads per output frame: 2T + 1."""
        return 2 * self.stages + 1
