"""The official training loss: L1 + 2 x hard example mining, over stage 1 and the final output.

Official ``code/loss/hard_example_mining.py``: per sample, the residual summed over all supervised
channels ranks the pixels; the top 50% ("hard") plus a random 10% are kept, and the loss is the L1 of
``x * mask`` vs ``y * mask`` averaged over *all* elements (masked-out zeros included).
"""
import torch
import torch.nn.functional as F


def hard_example_mask(
    pred: torch.Tensor, target: torch.Tensor, *, hard_ratio: float = 0.5, random_ratio: float = 0.1,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Pixels to supervise: the hardest ``hard_ratio`` by residual, plus ``random_ratio`` at random.

    Args:
        pred, target: (B, C, H, W).
        generator: for the random pixels (the official code used numpy's global RNG).

    Returns:
        (B, 1, H, W) mask in {0, 1}, no gradient.
    """
    with torch.no_grad():
        batch, _, height, width = pred.shape
        residual = (pred - target).abs().sum(dim=1).flatten(1)  # (B, H*W)
        pixels = height * width
        # official: threshold = residual sorted descending at index int(hard_ratio * HW); keep > threshold.
        # topk instead of a full sort; the random pixels are the k lowest of uniform scores (the same set
        # an argsort would pick), drawn on the generator's device: on a GPU nothing touches the host.
        rank = int(hard_ratio * pixels)
        threshold = residual.topk(rank + 1, dim=1).values[:, rank:rank + 1]  # (B, 1)
        hard = residual > threshold
        device = generator.device if generator is not None else pred.device
        scores = torch.rand(batch, pixels, generator=generator, device=device)
        chosen = scores.topk(int(random_ratio * pixels), dim=1, largest=False).indices
        random = torch.zeros_like(hard).scatter_(1, chosen.to(pred.device), True)
        return (hard | random).to(pred.dtype).view(batch, 1, height, width)


def cascade_loss(
    stages: list[torch.Tensor], sharp: torch.Tensor, *, hem_weight: float = 2.0, hard_ratio: float = 0.5,
    random_ratio: float = 0.1, generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Deep supervision of the cascade as in the official trainer.

    Stage 1's outputs (frames 1 .. 2T-1) and the final output (frame T) are compared with their sharp
    frames, all as one (B, 3 * 2T, H, W) stack (12 channels at T=2), with ``L1 + hem_weight * HEM``.

    Args:
        stages: ``CDVDTSP.forward_stages`` output; stage 1 is (B, 2T-1, 3, H, W), the last (B, 1, 3, H, W).
        sharp: (B, 2T+1, 3, H, W) sharp frames of the input window.

    Returns:
        the loss, and its parts ``l1``, ``hem`` as detached 0-d tensors (no ``.item()`` here: on a GPU that
        waits for the step; callers convert when they log).
    """
    stages_count = len(stages)
    supervised = torch.cat((stages[0], stages[-1]), dim=1) if stages_count > 1 else stages[0]
    targets = sharp[:, 1:-1]
    if stages_count > 1:
        targets = torch.cat((targets, sharp[:, stages_count:stages_count + 1]), dim=1)
    pred, target = supervised.flatten(1, 2), targets.flatten(1, 2)  # (B, 3*K, H, W)
    l1 = F.l1_loss(pred, target)
    mask = hard_example_mask(pred, target, hard_ratio=hard_ratio, random_ratio=random_ratio,
                             generator=generator)
    hem = F.l1_loss(pred * mask, target * mask)
    return l1 + hem_weight * hem, {"l1": l1.detach(), "hem": hem.detach()}
