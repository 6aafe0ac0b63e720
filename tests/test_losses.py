"""The official training loss: hard example mining and deep supervision."""
import torch

from model.losses import cascade_loss, hard_example_mask


def test_mask_keeps_hardest_half_plus_random_tenth():
    """Top 50% of pixels by residual are always kept; about 10% more at random; the rest dropped."""
    pred = torch.zeros(2, 3, 10, 10)
    target = torch.arange(100.0).view(1, 1, 10, 10).expand(2, 3, 10, 10)  # residual rises with index
    mask = hard_example_mask(pred, target, generator=torch.Generator().manual_seed(0)).view(2, 100)
    assert bool(mask[:, 50:].all())  # strictly above the value at descending rank 50 (= 49)
    extra = mask[:, :50].sum(dim=1)
    assert bool(((extra >= 0) & (extra <= 10)).all()) and extra.sum() > 0
    assert mask.shape == (2, 100)


def test_loss_supervises_stage_one_and_final_against_the_right_frames():
    """T=2: stage-1 outputs pair with sharp frames 1..3, the final output with frame 2."""
    sharp = torch.rand(1, 5, 3, 8, 8)
    stages = [sharp[:, 1:4].clone(), sharp[:, 2:3].clone()]
    loss, parts = cascade_loss(stages, sharp)
    assert loss.item() == 0 and {name: part.item() for name, part in parts.items()} == {"l1": 0.0, "hem": 0.0}
    wrong = [sharp[:, 1:4].clone(), sharp[:, 1:2].clone()]
    assert cascade_loss(wrong, sharp)[0].item() > 0


def test_loss_is_l1_plus_twice_hem_and_differentiable():
    torch.manual_seed(0)
    stages = [torch.rand(2, 3, 3, 8, 8, requires_grad=True), torch.rand(2, 1, 3, 8, 8, requires_grad=True)]
    sharp = torch.rand(2, 5, 3, 8, 8)
    loss, parts = cascade_loss(stages, sharp, generator=torch.Generator().manual_seed(1))
    assert abs(loss.item() - (parts["l1"] + 2 * parts["hem"])) < 1e-6
    loss.backward()
    assert stages[0].grad.abs().sum() > 0 and stages[1].grad.abs().sum() > 0


def test_mask_equals_the_sort_and_argsort_reference():
    """topk picks exactly the pixels the official sort (hard) and a full argsort of the scores (random)
    pick."""
    torch.manual_seed(3)
    pred, target = torch.rand(3, 12, 16, 16), torch.rand(3, 12, 16, 16)
    mask = hard_example_mask(pred, target, generator=torch.Generator().manual_seed(5)).view(3, -1)
    residual = (pred - target).abs().sum(dim=1).flatten(1)
    threshold = residual.sort(dim=1, descending=True).values[:, 128:129]
    scores = torch.rand(3, 256, generator=torch.Generator().manual_seed(5))
    random = torch.zeros(3, 256, dtype=torch.bool).scatter_(1, scores.argsort(dim=1)[:, :25], True)
    assert torch.equal(mask.bool(), (residual > threshold) | random)
