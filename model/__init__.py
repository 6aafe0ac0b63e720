"""CDVD-TSP (Pan, Bai, Tang, CVPR 2020), numerically faithful to the official release."""
from .cascade import CDVDTSP
from .checkpoint import (
    DEFAULT_CHECKPOINT,
    CheckpointError,
    default_checkpoint,
    load_checkpoint,
    load_pwc_weights,
    official_state_dict,
    save_checkpoint,
    save_official,
    save_pwc_weights,
)
from .config import ModelConfig
from .padding import crop_to, pad_to_multiple

__all__ = [
    "CDVDTSP", "CheckpointError", "DEFAULT_CHECKPOINT", "ModelConfig", "crop_to", "default_checkpoint",
    "load_checkpoint", "load_pwc_weights", "official_state_dict", "pad_to_multiple", "save_checkpoint",
    "save_official", "save_pwc_weights",
]
