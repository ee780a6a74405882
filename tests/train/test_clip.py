"""clip_gradients: torch's clip_grad_norm_, bit for bit, above and below the limit."""

import torch

from monosemantic.train.distributed import clip_gradients


def _params(scale: float, seed: int = 0) -> list[torch.nn.Parameter]:
    g = torch.Generator().manual_seed(seed)
    params = [torch.nn.Parameter(torch.randn(40, 7, generator=g)), torch.nn.Parameter(torch.randn(7, generator=g))]
    for p in params:
        p.grad = scale * torch.randn(p.shape, generator=g)
    return params


def test_clip_gradients_equals_torch_above_and_below_the_limit():
    for scale in (1e-3, 0.05, 10.0):          # norm well under, near and over 1.0
        ours, theirs = _params(scale), _params(scale)
        clip_gradients(ours, 1.0)
        torch.nn.utils.clip_grad_norm_(theirs, 1.0)
        for a, b in zip(ours, theirs):
            assert torch.equal(a.grad, b.grad), scale
    over = _params(10.0)
    clip_gradients(over, 1.0)
    assert abs(float(torch.nn.utils.get_total_norm([p.grad for p in over])) - 1.0) < 1e-4


def test_parameters_without_gradients_are_skipped():
    p = torch.nn.Parameter(torch.ones(3))
    clip_gradients([p], 1.0)
    assert p.grad is None
