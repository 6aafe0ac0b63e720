"""The conditions a default model is judged under: what footage looks like when it reaches ``deblur``.

A model tuned to one kind of blur can gain there and harm everything else, so held-out clips are scored
under several conditions (`CONDITIONS`), each made from the clip's sharp frames:

* blurred ones (`pipeline.data.synth`): exposures of 3, 7 and 11 frames averaged in linear light; 7 frames
  averaged in decoded (gamma) values, GOPRO's ``blur`` convention; and fast motion, 7-frame exposures
  whose consecutive blurred frames are 2 or 3 source frames apart. Scored by the gain in PSNR against the
  sharp frames at the exposures' centres.
* ``sharp``: the frames themselves, as most footage is. Scored by the output's PSNR against the input:
  a model that leaves sharp footage alone gives it back at 38 dB or more.
* ``still``: one frame of the clip held, a still shot. Scored as ``sharp``.
"""
import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from pipeline.data.synth import SynthConfig, synthesize


@dataclass(frozen=True)
class Condition:
    """A named way of making a clip's input from its sharp frames; ``exposure`` None holds one frame."""

    name: str
    what: str
    exposure: SynthConfig | None

    @property
    def blurred(self) -> bool:
        """Whether the input differs from its target (scored by gain), or is it (scored against itself)."""
        return self.exposure is not None and self.exposure.window > 1


CONDITIONS = {condition.name: condition for condition in (
    Condition("linear3", "3-frame exposures, linear light", SynthConfig(window=3)),
    Condition("linear7", "7-frame exposures, linear light (DVD, GOPRO)", SynthConfig(window=7)),
    Condition("linear11", "11-frame exposures, linear light", SynthConfig(window=11)),
    Condition("gamma7", "7-frame exposures, decoded values (GOPRO's blur)",
              SynthConfig(window=7, linear_light=False)),
    Condition("fast2", "7-frame exposures 2 frames apart", SynthConfig(window=7, stride=2)),
    Condition("fast3", "7-frame exposures 3 frames apart", SynthConfig(window=7, stride=3)),
    Condition("sharp", "the sharp frames", SynthConfig(window=1)),
    Condition("still", "one frame held (a still shot)", None),
)}


def condition_pairs(frames: Iterable[np.ndarray], condition: Condition,
                    limit: int | None = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(input, target) (H, W, 3) uint8 pairs of ``condition`` from a clip's sharp frames, at most ``limit``.

    ``still`` holds the clip's middle frame for as many frames as ``sharp`` would give (``limit`` at most).
    """
    if condition.exposure is not None:
        pairs = ((pair.blurred, pair.sharp) for pair in synthesize(frames, condition.exposure))
        yield from itertools.islice(pairs, limit)
        return
    clip = list(frames)
    if not clip:
        return
    held = clip[len(clip) // 2]
    for _ in range(min(len(clip), limit or len(clip))):
        yield held, held
