"""The streaming engine equals the naive per-window computation, for every border policy and length."""
from collections import Counter

import pytest
import torch

from model import ModelConfig
from pipeline.stream.engine import StreamingEngine, naive_windows, virtual_chunks
from pipeline.stream.windows import first_restored, frames_needed, padded_indices, windows

from .helpers import TINY, seeded_clip, seeded_model


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
    """Every model call computes one group of absolute positions, with the same shape and inputs however the
    video is chunked, so chunk sizes, resuming and parts of the video change no bit (this is what makes
    time shards and resumed runs write the whole run's file)."""
    model = seeded_model(TINY, seed=4)
    video = seeded_clip(14, 48, 64)[0]
    engine = StreamingEngine(model, group=2)
    whole = torch.cat(list(engine.run(video.split(3))))
    assert all(torch.equal(torch.cat(list(engine.run(video.split(chunk)))), whole) for chunk in (1, 5, 14))
    first, stop = frames_needed(6, 8, 2, 2)  # frames 6-7: frames 2-11 read
    part = torch.cat(list(engine.run(video[first:stop].split(4), first_frame=first, ends_video=False)))
    assert (first, stop, first_restored(first, 2, 2)) == (2, 12, 6) and torch.equal(part, whole[6:8])
    head = torch.cat(list(engine.run(video[:6].split(2), ends_video=False)))  # frames 0-1
    assert torch.equal(head, whole[:2])
    tail = torch.cat(list(engine.run(video[first:].split(5), first_frame=first)))  # a resume at frame 6
    assert torch.equal(tail, whole[6:])


def test_parts_cut_inside_a_group_give_the_same_bits():
    """Groups of 3: runs that start and stop at any frame, and chunks that end inside a group, restore the
    whole groups they hold all the inputs of, bit for bit as the whole run; `windows.first_restored` and
    `windows.frames_needed` say which (the last frame restored has T whole groups read after its own)."""
    model = seeded_model(TINY, seed=5)
    video = seeded_clip(26, 20, 24)[0]
    engine = StreamingEngine(model, group=3)
    whole = torch.cat(list(engine.run(video.split(4))))
    for first, stop in ((1, 20), (4, 23), (5, 26), (7, 25)):
        ends = stop == len(video)
        part = list(engine.run(video[first:stop].split(2), first_frame=first, ends_video=ends))
        start = first_restored(first, 2, 3)
        end = start + sum(len(p) for p in part)
        assert torch.equal(torch.cat(part), whole[start:end])
        needed = frames_needed(start, end, 2, 3)
        assert needed[0] >= first and (ends or needed[1] <= stop)
        assert ends or frames_needed(start, end + 1, 2, 3)[1] > stop  # nothing more could be restored
        assert ends == (end == len(video))


def test_calls_hold_whole_groups():
    """14 frames, T = 2, groups of 4: every pyramid and restoration call holds one group of 4 positions,
    but for the groups cut by the video's ends (level 0 holds positions -2..15, stage 1 -1..14, stage 2
    0..13)."""
    model = seeded_model(TINY, seed=4)
    batches = {"pyramid": [], "restore": []}
    hooks = [module.register_forward_pre_hook(lambda _, args, name=name: batches[name].append(len(args[0])))
             for name, module in (("pyramid", model.flow.pyramid), ("restore", model.restore))]
    list(StreamingEngine(model, group=4).run(seeded_clip(14, 20, 24)[0].split(3)))
    for hook in hooks:
        hook.remove()
    stage1, stage2 = [1, 4, 4, 4, 3], [4, 4, 4, 2]
    assert Counter(batches["pyramid"]) == Counter([2, 4, 4, 4, 4] + stage1)
    assert Counter(batches["restore"]) == Counter(stage1 + stage2)


@pytest.mark.parametrize("frames", [1, 2, 3, 4])
def test_short_videos_give_one_output_per_frame(frames):
    """Videos shorter than the 5-frame window still give every frame, equal to the naive windows."""
    model = seeded_model(TINY)
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


@pytest.mark.parametrize("start", [9, 12, 13])
def test_resume_mid_video_equals_full_run(start):
    """Fed from `windows.frames_needed` with first_frame set, the engine (groups of 4) gives frames from
    `windows.first_restored` on, bit for bit as a full run (from the start when that is within reach)."""
    model = seeded_model(TINY, seed=4)
    video = seeded_clip(20, 24, 28)[0]
    full = torch.cat(list(StreamingEngine(model, group=4).run(video.split(4))))
    first, _ = frames_needed(start, len(video), 2, 4)
    first = max(first, 0)
    resumed = torch.cat(list(StreamingEngine(model, group=4).run(video[first:].split(4), first_frame=first)))
    begin = first_restored(first, 2, 4)
    assert begin <= start and torch.equal(resumed, full[begin:])


def test_bad_arguments():
    model = seeded_model(TINY)
    with pytest.raises(ValueError, match="unknown border policy 'mirror'"):
        StreamingEngine(model, border="mirror")
    with pytest.raises(ValueError, match="group must be >= 1, got 0"):
        StreamingEngine(model, group=0)
    with pytest.raises(ValueError, match="no frames"):
        list(StreamingEngine(model).run([]))
