"""Everything around the CDVD-TSP model (`model`): video I/O, streaming, data, training, scoring, measuring.

Sub-packages: `video` (probe, readers, writer), `stream` (the streaming engine and ``deblur_video``),
`data` (datasets, synthesis, loaders), `measure` (timing, FLOPs, the profiler), `cli` (the commands).
At the top: `config` (the typed configuration), the runtime rules (`runtime`: device and model building;
`precision`; `distributed`), `training` and `flow_training`, `evaluation` and `metrics`, `errors`.
"""
