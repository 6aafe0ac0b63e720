"""Deblur frames from any source (a frame folder, a decoder), in order, in this thread: no files, no workers,
no parts (`pipeline.stream.deblur_part` does those)."""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

import numpy as np
import torch

from model import CDVDTSP
from pipeline.precision import precision_context
from pipeline.runtime import prepare_model
from pipeline.stream.engine import StreamingEngine
from pipeline.video.frames import to_model, to_uint8

if TYPE_CHECKING:  # pipeline.config imports this package's vocabularies (`windows.BORDERS`)
    from pipeline.config import DeblurConfig


def restore_frames(
    model: CDVDTSP, frames: Iterable[np.ndarray], config: DeblurConfig, device: torch.device | str = "cpu"
) -> Iterator[np.ndarray]:
    """Deblur frames from any source (a frame folder, a decoder), in order, without files or threads.

    Args:
        frames: (H, W, 3) uint8 RGB images.

    Yields:
        (H, W, 3) uint8 restored images, one per input image.
    """
    device = torch.device(device)
    model = prepare_model(model, config, device)  # as the job prepares it: layout, compile

    def chunks() -> Iterator[torch.Tensor]:
        batch = []
        for image in frames:
            batch.append(torch.from_numpy(np.array(image)))  # a writable copy of a possibly read-only frame
            if len(batch) == config.chunk:
                yield to_model(torch.stack(batch).to(device))
                batch = []
        if batch:
            yield to_model(torch.stack(batch).to(device))

    engine = StreamingEngine(model, border=config.border, group=config.group)
    with precision_context(device, config.precision):
        for restored in engine.run(chunks()):
            yield from to_uint8(restored.float()).cpu().numpy()
