"""torchrun's pieces (pipeline.distributed, pipeline.training): a rank left waiting times out, and each rank
resumes its own random state."""
import os
import subprocess
import sys
import time

import torch

from pipeline.checkout import ROOT
from pipeline.training.steps import restore_rng, rng_state

WAITS_ALONE = """
import time
from pipeline.distributed import barrier, init_process
process, _ = init_process("cpu")
if process.rank == 1:
    barrier()  # rank 0 never comes: it is busy (or dead)
else:
    time.sleep(60)
"""


def test_a_rank_left_waiting_times_out_instead_of_hanging(tmp_path):
    """With CDVD_DIST_TIMEOUT_MIN at 3 s, the rank waiting in a barrier that rank 0 never reaches fails
    with a timeout, and torchrun ends the run long before rank 0's minute is up."""
    script = tmp_path / "waits.py"
    script.write_text(WAITS_ALONE)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CDVD_DIST_TIMEOUT_MIN": "0.05",
           "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    began = time.monotonic()
    run = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
                          "--master-port", "29534", str(script)],
                         capture_output=True, text=True, env=env, timeout=120, cwd=ROOT)
    assert run.returncode != 0 and time.monotonic() - began < 45
    assert "timed out" in run.stderr.lower() or "timeout" in run.stderr.lower(), run.stderr[-2000:]


def test_each_rank_resumes_its_own_random_state():
    """A saved run holds one random state per rank; rank 1 of 2 gets rank 1's (torch's and the hard-example
    generator's), not rank 0's."""
    generator = torch.Generator()
    saved = []
    for seed in (1, 2):
        torch.manual_seed(seed)
        generator.manual_seed(seed + 10)
        saved.append(rng_state(generator))
    torch.manual_seed(99)
    restore_rng({"ranks": saved}, generator, rank=1, world_size=2, device=torch.device("cpu"))
    assert torch.equal(torch.get_rng_state(), saved[1]["torch"])
    assert torch.equal(generator.get_state(), saved[1]["hem"])
    assert not torch.equal(saved[0]["torch"], saved[1]["torch"])
