"""A start for PWC-Net that reads its cost volumes: the way past the zero-flow plateau.

Trained from zero flow, PWC-Net here stays at zero flow (`benchmarks/flow_start.py`): its random features
give cost volumes that barely vary across displacements, and the quickest way down the endpoint error is
to silence them. The matching start builds what the endpoint error alone does not find, in three steps:

1. `rescale_`: every pyramid level's cost volume is made to vary by about 1 across its 81 displacements
   (and every other conv but the flow heads to unit output), so the costs carry signal from the start;
2. the feature pyramid alone is trained to *match* (`matching_loss`): at levels 2 to 4 the cost volume,
   standardised, is a distribution over the 81 displacements whose cross-entropy against the true one is
   the loss (a classification of the displacement, as in correlation-based matchers);
3. `fit_heads_`: the flow heads of levels 4, 3 and 2 are fitted in closed form, coarse to fine (least
   squares of the true flow on each head's input, centre tap), so the net's first flow already reads the
   cost volumes.

The endpoint error then trains the whole net from there, with the matching loss beside it at a small
weight (``flow.matching``) so that the costs stay informative.
"""
from collections.abc import Callable, Iterator, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from model.correlation import correlation
from model.pwc import FLOW_SCALE, PWCNet
from pipeline.config import FlowConfig

MAX_DISPLACEMENT = 4  # PWC-Net's cost volume: displacements -4..4 at each level
MATCHED_LEVELS = (2, 3, 4)  # pyramid levels the matching loss teaches (1/4 .. 1/16)
LOGIT_SCALE = 10.0  # standardised costs times this are the logits: a sharp distribution over 81 bins
RIDGE = 1e-3  # closed-form heads: ridge weight relative to the inputs' mean square
WHOLE_CELL = 0.99  # a cell's valid share above this: every pixel of it is valid
ROUNDS = 3  # passes of `_unit_rms_`: the biases do not scale with the weights, a few passes settle them

Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]
"""first, second (B, 3, S, S), flow (B, 2, S, S) in pixels, valid (B, 1, S, S)."""


def _unit_rms_(convs: Sequence[nn.Conv2d], run: Callable[[], object]) -> None:
    """Scale each of ``convs`` so that its output over what ``run()`` feeds it has an RMS of about 1.

    In forward order within each pass: a conv's hook scales its weights by its output's RMS and hands the
    next layers the output those weights give, so every conv is measured on inputs already rescaled (as
    one conv at a time would be, in `ROUNDS` passes instead of `ROUNDS` per conv).
    """
    def rescale(conv, inputs, output):
        rms = output.square().mean().sqrt()
        conv.weight /= rms
        bias = conv.bias[:, None, None]
        return (output - bias) / rms + bias

    hooks = [conv.register_forward_hook(rescale) for conv in convs]
    for _ in range(ROUNDS):
        run()
    for hook in hooks:
        hook.remove()


@torch.no_grad()
def spreads(net: PWCNet, first: torch.Tensor, second: torch.Tensor) -> list[float]:
    """Per pyramid level, finest first: the cost volume's std over the displacements, mean over pixels."""
    pairs = zip(net.pyramid(first), net.pyramid(second))
    return [correlation(a, b).std(dim=1).mean().item() for a, b in pairs]


@torch.no_grad()
def rescale_(net: PWCNet, first: torch.Tensor, second: torch.Tensor) -> PWCNet:
    """In forward order on the (B, 3, S, S) pair batch: every pyramid conv to an output RMS of 1 on ``first``
    (layer-sequential unit variance, Mishkin and Matas 2016); each level's features scaled so that its cost
    volume's spread is 1 (it is quadratic in them; the next level's first conv takes the inverse scale, so
    it sees the same input); every other conv but the flow heads to an output RMS of 1. The heads are left
    as they are (zero flow stays zero flow). In place; returns ``net``."""
    levels = net.pyramid.levels
    _unit_rms_([conv for conv in levels.modules() if isinstance(conv, nn.Conv2d)], lambda: net.pyramid(first))
    for index, level in enumerate(levels):
        scale = spreads(net, first, second)[index] ** -0.5
        level[-2].weight *= scale  # the level's last conv; LeakyReLU is positively homogeneous
        level[-2].bias *= scale
        if index + 1 < len(levels):
            levels[index + 1][0].weight /= scale
    heads = [decoder.predict for decoder in net.decoders] + [net.refiner[-1]]
    convs = [conv for part in (net.decoders, net.refiner) for conv in part.modules()
             if isinstance(conv, nn.Conv2d) and all(conv is not head for head in heads)]
    _unit_rms_(convs, lambda: net(first, second))
    return net


def level_truth(flow: torch.Tensor, valid: torch.Tensor, size: tuple[int, int]) -> tuple[torch.Tensor, ...]:
    """The truth at a pyramid level of ``size`` (h, w) from (B, 2, H, W) ``flow`` valid where ``valid``
    (B, 1, H, W): each cell's (B, 2, h, w) mean flow over its valid pixels, and its (B, 1, h, w) valid
    share (`pipeline.training.flow.multiscale_epe` weighs cells by it; here a cell counts when whole)."""
    share = F.adaptive_avg_pool2d(valid, size)
    return F.adaptive_avg_pool2d(flow * valid, size) / share.clamp(min=1e-6), share


def matching_loss(first: Sequence[torch.Tensor], second: Sequence[torch.Tensor], flow: torch.Tensor,
                  valid: torch.Tensor) -> tuple[torch.Tensor, float]:
    """How well the pyramids' cost volumes pick the true displacement, at `MATCHED_LEVELS`.

    Args:
        first, second: both frames' pyramids (`PWCNet.features`, finest first).
        flow: (B, 2, S, S) true flow in pixels of the frames; valid: (B, 1, S, S) where it holds.

    Returns:
        the 0-d loss, mean over levels of the cross-entropy between the softmax of the standardised cost
        volume (times `LOGIT_SCALE`) and the true displacement's bilinear share of the 4 nearest bins (a
        displacement beyond the volume counts at its edge), over the cells valid throughout; and the share
        of those cells whose best cost is at the truth's nearest bin (a float, for logs).
    """
    side = 2 * MAX_DISPLACEMENT + 1
    losses, hits = [], []
    for level in MATCHED_LEVELS:
        costs = correlation(first[level - 1], second[level - 1]).float()  # (B, 81, h, w)
        logits = LOGIT_SCALE * (costs - costs.mean(1, keepdim=True)) / (costs.std(1, keepdim=True) + 1e-9)
        truth, share = level_truth(flow, valid, costs.shape[-2:])
        inside = share[:, 0] > WHOLE_CELL
        bins = (truth / 2 ** level).clamp(-MAX_DISPLACEMENT, MAX_DISPLACEMENT - 1e-4) + MAX_DISPLACEMENT
        low = bins.floor()
        frac = bins - low
        target = torch.zeros_like(costs)
        for dx in (0, 1):
            for dy in (0, 1):
                weight = (frac[:, 0] if dx else 1 - frac[:, 0]) * (frac[:, 1] if dy else 1 - frac[:, 1])
                index = (low[:, 1] + dy) * side + (low[:, 0] + dx)  # channel (dy + d) * (2d + 1) + (dx + d)
                target.scatter_add_(1, index.long()[:, None], weight[:, None])
        mask = inside.float()
        cells = mask.sum().clamp(min=1)
        losses.append((-(target * logits.log_softmax(1)).sum(1) * mask).sum() / cells)
        hits.append(((logits.argmax(1) == target.argmax(1)).float() * mask).sum() / cells)
    return torch.stack(losses).mean(), torch.stack(hits).mean().item()


def _head_input(net: PWCNet, decoder: nn.Module, first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
    """What ``decoder``'s flow head sees when ``net`` runs on the pair batch."""
    captured = []
    hook = decoder.predict.register_forward_hook(lambda module, args, output: captured.append(args[0]))
    net(first, second)
    hook.remove()
    return captured[0]


@torch.no_grad()
def fit_heads_(net: PWCNet, batches: Sequence[Batch]) -> list[dict]:
    """Fit the flow heads of levels 4, 3 and 2 in closed form on ``batches``, coarse to fine, in place.

    Each head becomes the ridge regression (weight `RIDGE`, with a bias) of the level's true flow in the
    net's units on the head's input at the centre tap, over the cells valid throughout; a finer level is
    fitted after the coarser ones, on the inputs they now give it. Levels 6 and 5, whose cells at the
    training crops are mostly border, and the refiner stay as they are. Returns per level (coarsest
    first) the fit's mean endpoint error and zero flow's, in pixels, on ``batches``.
    """
    report = []
    for decoder in net.decoders:
        if decoder.level > max(MATCHED_LEVELS):
            continue
        inputs, targets = [], []
        for first, second, flow, valid in batches:
            features = _head_input(net, decoder, first, second).double()  # (B, C, h, w)
            truth, share = level_truth(flow, valid, features.shape[-2:])
            inside = share[:, 0] > WHOLE_CELL
            inputs.append(features.permute(0, 2, 3, 1)[inside])  # (N, C)
            targets.append(truth.double().permute(0, 2, 3, 1)[inside] / FLOW_SCALE)  # (N, 2)
        x, y = torch.cat(inputs), torch.cat(targets)
        x = torch.cat((x, x.new_ones(len(x), 1)), dim=1)
        gram = x.T @ x
        gram += RIDGE * x.square().mean() * len(x) * torch.eye(len(gram), dtype=gram.dtype)
        solution = torch.linalg.solve(gram, x.T @ y)  # (C + 1, 2)
        head = decoder.predict
        head.weight.zero_()
        head.weight[:, :, 1, 1] = solution[:-1].T.to(head.weight.dtype)
        head.bias.copy_(solution[-1])
        report.append({"level": decoder.level,
                       "epe": FLOW_SCALE * (x @ solution - y).norm(dim=1).mean().item(),
                       "zero_epe": FLOW_SCALE * y.norm(dim=1).mean().item()})
    return report


def matching_start_(net: PWCNet, pairs: Iterator[Batch], flow: FlowConfig, device: torch.device,
                    log: Callable[[dict], None]) -> PWCNet:
    """The whole start, in place, on batches drawn from ``pairs``: `rescale_` on the first, then
    ``flow.matching_updates`` Adam updates (rate ``flow.matching_lr``, fp32) of the feature pyramid alone on
    `matching_loss`, then `fit_heads_` on the next ``flow.fit_batches``. ``log`` gets the matching records
    (every ``flow.log_every`` updates) and the fit's report. Returns ``net``."""
    def batch() -> Batch:
        return tuple(t.to(device) for t in next(pairs))

    rescale_(net, *batch()[:2])
    optimizer = torch.optim.Adam(net.pyramid.parameters(), lr=flow.matching_lr)
    for update in range(1, flow.matching_updates + 1):
        first, second, truth, valid = batch()
        loss, hit = matching_loss(*net.pair_features(first, second), truth, valid)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if update % flow.log_every == 0:
            log({"matching_update": update, "matching_loss": loss.item(), "hit": hit})
    log({"fitted_heads": fit_heads_(net, [batch() for _ in range(flow.fit_batches)])})
    return net
