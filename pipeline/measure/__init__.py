"""Measuring: where time goes, how much arithmetic a frame costs, and where a figure was measured.

* `timing`: named sections (exclusive time per thread), spreads, peak memory, CPU and GPU busy shares.
* `flops`: counted multiply-accumulates per frame and the device peaks to hold them against.
* `profiling`: the profiler's modes (model, decode, end-to-end, ingest, train) as JSON-ready results;
  `ingest`: the DALI loader against the PNG loader; `chart`: a profile as a picture.
* `runinfo`: date, commit, device and command, stamped on every result file.
* `clips`: the benchmarks' clips (the bundled sample, looped to any length).
"""
