"""torch.compile of the engine's per-call pieces (pipeline.compiling) and channels-last weights
(pipeline.memory_format): same state dict, the same frames to rounding."""
import copy

import pytest
import torch

from pipeline.compiling import GRAPHED, compile_model
from pipeline.memory_format import with_memory_format
from pipeline.stream.engine import StreamingEngine

from .helpers import TINY, seeded_model


def engine_output(model, video: torch.Tensor) -> torch.Tensor:
    with torch.inference_mode():
        return torch.cat(list(StreamingEngine(model).run(video.split(3))))


def test_traced_pieces_give_the_eager_bits():
    """Every piece traces whole (dynamo, eager backend: no code generation on a CPU test): the engine's
    frames are the eager ones bit for bit, and the state dict keeps its keys."""
    model = seeded_model(TINY, seed=3).eval()
    video = torch.rand(6, 3, 32, 48, generator=torch.Generator().manual_seed(0))
    eager, keys = engine_output(model, video), list(model.state_dict())
    assert compile_model(model, "default", backend="eager") is model
    assert torch.equal(engine_output(model, video), eager) and list(model.state_dict()) == keys


def static_outputs(graph: torch.fx.GraphModule, example_inputs) -> object:
    """A torch.compile backend that returns outputs as CUDA graphs do: every call writes them into the same
    buffers (the graph's memory pool) and returns those, so a caller that keeps an output across calls sees
    it overwritten."""
    buffers = []

    def run(*args):
        outputs = graph(*args)
        if not buffers:
            buffers.extend(output.clone() for output in outputs)
        for buffer, output in zip(buffers, outputs):
            buffer.copy_(output)
        return type(outputs)(buffers)
    return run


def test_graphed_modes_give_the_engine_outputs_it_owns():
    """With outputs that every call overwrites (CUDA graphs' rule, `static_outputs` on a CPU), the graphed
    modes still give the eager frames bit for bit: the engine keeps pyramids and restored positions across
    calls, so the pieces' outputs are cloned out. A mode without graphs clones nothing, and the stand-in
    then corrupts the frames: the test has teeth."""
    model = seeded_model(TINY, seed=3).eval()
    video = torch.rand(6, 3, 32, 48, generator=torch.Generator().manual_seed(0))
    eager = engine_output(model, video)
    for mode in GRAPHED:
        graphed = compile_model(copy.deepcopy(model), mode, backend=static_outputs)
        assert torch.equal(engine_output(graphed, video), eager), mode
    ungraphed = compile_model(copy.deepcopy(model), "default", backend=static_outputs)
    assert not torch.equal(engine_output(ungraphed, video), eager)


def test_unknown_modes_fail():
    model = seeded_model(TINY)
    with pytest.raises(ValueError, match="compile mode"):
        compile_model(model, "fast")


def test_channels_last_weights_give_the_contiguous_frames_to_rounding():
    """Every 4-d weight goes channels-last, so the convolutions run NHWC: the engine's frames stay within
    1e-5 of the contiguous model's, the state dict keeps its keys and values."""
    model = seeded_model(TINY, seed=3).eval()
    video = torch.rand(6, 3, 32, 48, generator=torch.Generator().manual_seed(0))
    contiguous, state = engine_output(model, video), {k: v.clone() for k, v in model.state_dict().items()}
    assert with_memory_format(model, "channels_last") is model
    weights = [p for p in model.parameters() if p.dim() == 4]
    assert weights and all(p.is_contiguous(memory_format=torch.channels_last) for p in weights)
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items()) and list(state) == list(
        model.state_dict())
    assert (engine_output(model, video) - contiguous).abs().max() <= 1e-5
    with pytest.raises(ValueError, match="memory format"):
        with_memory_format(model, "nhwc")


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_compiled_and_graphed_engine_stays_within_rounding_of_eager():
    """Inductor kernels captured as CUDA graphs (reduce-overhead) on the GPU: within 1e-5 of eager fp32.
    (The GPU check measures their speed, `pipeline.measure.gpu_steps.compiled`.)"""
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    model = seeded_model(TINY, seed=3).cuda().eval()
    video = torch.rand(8, 3, 64, 96, device="cuda")
    eager = engine_output(model, video)
    compile_model(model, "reduce-overhead")
    engine_output(model, video)  # compiles (and records the graphs)
    assert (engine_output(model, video) - eager).abs().max() <= 1e-5
