"""The streaming engine equals the naive per-window computation, for every border policy and length."""
import pytest
import torch

from model import ModelConfig
from pipeline.stream.engine import StreamingEngine, naive_windows, virtual_chunks
from pipeline.stream.windows import padded_indices, windows

from .helpers import seeded_clip, seeded_model


@pytest.mark.parametrize("stages", [1, 2])
@pytest.mark.parametrize("border", ["reflect", "replicate", "official"])
def test_engine_equals_naive_windows(stages, border):
    """fp32, any chunking: the cached schedule gives the official schedule's frames (<= 1e-5)."""
    model = seeded_model(ModelConfig(stages=stages, features=4, resblocks=1), seed=stages)
    video = seeded_clip(9, 30, 38)[0]  # 30x38: not a multiple of 4, padded and cropped back
    reference = naive_windows(model, video, border=border)
    for chunk in (4, 1, 9):
        restored = torch.cat(list(StreamingEngine(model, border=border).run(video.split(chunk))))
        assert restored.shape == video.shape
        assert (restored - reference).abs().max() <= 1e-5


def test_any_chunking_and_any_part_give_the_same_bits():
    """Every model call has one shape, so chunk sizes, resuming and parts of the video change no bit (this
    is what makes time shards and resumed runs write the whole run's file)."""
    model = seeded_model(ModelConfig(features=4, resblocks=1), seed=4)
    video = seeded_clip(12, 48, 64)[0]
    engine = StreamingEngine(model)
    whole = torch.cat(list(engine.run(video.split(3))))
    assert all(torch.equal(torch.cat(list(engine.run(video.split(chunk)))), whole) for chunk in (1, 5, 12))
    part = torch.cat(list(engine.run(video[3:10].split(4), first_frame=3, ends_video=False)))  # frames 5-7
    assert torch.equal(part, whole[5:8])
    head = torch.cat(list(engine.run(video[:6].split(2), ends_video=False)))  # frames 0-3
    assert torch.equal(head, whole[:4])


@pytest.mark.parametrize("frames", [1, 2, 3, 4])
def test_short_videos_give_one_output_per_frame(frames):
    """Videos shorter than the 5-frame window still give every frame, equal to the naive windows."""
    model = seeded_model(ModelConfig(features=4, resblocks=1))
    video = seeded_clip(frames, 20, 24)[0]
    restored = torch.cat(list(StreamingEngine(model).run(video.split(1))))
    assert restored.shape == video.shape
    assert (restored - naive_windows(model, video)).abs().max() <= 1e-5


def test_official_border_matches_inference_py():
    """``official``: prepend f0 f1, append f[n-2] f[n-1]; frame 0's window is [f0, f1, f0, f1, f2]."""
    assert padded_indices(6, 2, "official") == [0, 1, 0, 1, 2, 3, 4, 5, 4, 5]
    assert windows(6, 2, "official")[0] == [0, 1, 0, 1, 2]
    assert windows(6, 2, "official")[-1] == [3, 4, 5, 4, 5]
    assert padded_indices(6, 2, "reflect") == [2, 1, 0, 1, 2, 3, 4, 5, 4, 3]
    assert padded_indices(6, 2, "replicate") == [0, 0, 0, 1, 2, 3, 4, 5, 5, 5]


@pytest.mark.parametrize("border", ["reflect", "replicate", "official"])
@pytest.mark.parametrize("frames", [1, 2, 3, 5, 10])
def test_virtual_stream_equals_padded_indices(border, frames):
    """Streaming the border needs no look-ahead beyond radius + 1 frames and gives the full index list."""
    video = torch.arange(frames, dtype=torch.float32).view(frames, 1, 1, 1)
    for chunk in (1, 3, 16):
        streamed = torch.cat(list(virtual_chunks(video.split(chunk), 2, border)))
        assert streamed.flatten().long().tolist() == padded_indices(frames, 2, border)


@pytest.mark.parametrize("start", [3, 4, 6])
def test_resume_mid_video_equals_full_run(start):
    """Fed from frame start - T with first_frame set, the engine gives frames start.. exactly as a full
    run."""
    model = seeded_model(ModelConfig(features=4, resblocks=1), seed=4)
    video = seeded_clip(9, 24, 28)[0]
    full = torch.cat(list(StreamingEngine(model).run(video.split(4))))
    first = start - model.config.stages
    resumed = torch.cat(list(StreamingEngine(model).run(video[first:].split(4), first_frame=first)))
    assert resumed.shape == full[start:].shape
    assert (resumed - full[start:]).abs().max() <= 1e-5


def test_bad_arguments():
    model = seeded_model(ModelConfig(features=4, resblocks=1))
    with pytest.raises(ValueError, match="unknown border policy 'mirror'"):
        StreamingEngine(model, border="mirror")
    with pytest.raises(ValueError, match="no frames"):
        list(StreamingEngine(model).run([]))
