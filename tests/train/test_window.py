"""The training log's FVE and means, from per-step sums, against a float64 computation."""

from types import SimpleNamespace

import torch

from monosemantic.train.loop import _Window


def test_window_fve_matches_float64_on_batches_with_a_large_mean():
    # Residual streams carry a large mean direction: Σ‖x‖² − n‖mean‖² cancels, so the
    # per-step sums must stay accurate although the batch is summed in float32.
    g = torch.Generator().manual_seed(0)
    window, err, dev = _Window(), 0.0, 0.0
    for step in range(3):
        x = torch.randn(4096, 576, generator=g) + 40.0 * (step + 1)              # mean ≫ spread
        x_hat = x + 0.5 * torch.randn(4096, 576, generator=g)
        out = SimpleNamespace(x_hat=x_hat, n_active=torch.full((4096,), 3.0), terms={"mse": torch.tensor(2.0)})
        window.add(x, out, torch.tensor(1.5))
        x64 = x.double()
        err += float((x64 - x_hat.double()).pow(2).sum())
        dev += float((x64 - x64.mean(0)).pow(2).sum())
    record = window.flush()
    assert abs(record["fve"] - (1 - err / dev)) < 1e-6, (record["fve"], 1 - err / dev)
    assert record["loss"] == 1.5 and record["l0"] == 3.0 and record["mse"] == 2.0


class _TwoRanks:
    """sum_metrics_ as an all-reduce over two ranks, the other rank's sums given."""

    def __init__(self, other: torch.Tensor):
        self.other = other

    def sum_metrics_(self, values: torch.Tensor) -> torch.Tensor:
        return values + self.other


def test_window_fve_over_two_data_parallel_ranks_uses_the_global_batch_mean():
    # Each rank sees half of every step's rows, the halves with different means: the
    # denominator must use the whole step's mean, not each rank's own.
    g = torch.Generator().manual_seed(1)
    ranks, err, dev = [_Window(), _Window()], 0.0, 0.0
    for step in range(2):
        halves = [torch.randn(512, 64, generator=g) + 30.0 + 5.0 * r for r in range(2)]
        x_hats = [h + 0.3 * torch.randn(512, 64, generator=g) for h in halves]
        for window, x, x_hat in zip(ranks, halves, x_hats):
            window.add(x, SimpleNamespace(x_hat=x_hat, n_active=torch.ones(512), terms={}), torch.tensor(1.0))
        x64, xh64 = torch.cat(halves).double(), torch.cat(x_hats).double()
        err += float((x64 - xh64).pow(2).sum())
        dev += float((x64 - x64.mean(0)).pow(2).sum())
    other = torch.stack(ranks[1].steps)
    record = ranks[0].flush(_TwoRanks(other))
    assert abs(record["fve"] - (1 - err / dev)) < 1e-9, (record["fve"], 1 - err / dev)
