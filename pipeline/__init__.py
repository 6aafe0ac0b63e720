"""Everything around the CDVD-TSP model (`model`): video I/O, streaming, data, training, scoring, measuring.

Sub-packages: `video` (probe, readers, writer), `stream` (the streaming engine and ``deblur_video``),
`data` (datasets, synthesis, loaders, the scored sequence), `training` (the cascade's and PWC-Net's),
`measure` (timing, FLOPs, the profiler), `cli` (the commands).
At the top: `config` (the typed configuration), the runtime rules (`runtime`: device and model building;
`precision`; `compiling`; `memory_format`; `distributed`), `evaluation` and `metrics`, `errors`, `checkout`.
"""
