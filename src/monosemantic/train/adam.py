"""The trainer's optimiser: torch's fused Adam, fed contiguous tensors.

W_enc is stored in W_decᵀ's layout (column-major [d, n]: `SAE.__init__` clones
W_decᵀ), and so are its gradient and Adam's moments. torch's fused CPU kernel runs
far slower on non-contiguous tensors: one step on a [576, 16384] W_enc took 85 ms
column-major against 14 ms for the same memory seen as a contiguous [16384, 576]
(one loaded core; more than the rest of the optimiser step). Adam is elementwise, so
stepping the transposed views gives the same update, in place; parameters and
moments keep their layout, so checkpoints are unchanged."""

from __future__ import annotations

import torch
from torch import Tensor


def _transposable(t: Tensor) -> bool:
    """A 2-D tensor that is not contiguous but whose transpose is."""
    return t.dim() == 2 and not t.is_contiguous() and t.t().is_contiguous()


class ContiguousAdam(torch.optim.Adam):
    """Adam whose step hands column-major 2-D parameters (with their gradient and
    moments) to torch as their contiguous transposes; everything else as torch does."""

    @torch.no_grad()
    def step(self, closure=None):
        swapped: list[tuple[list, int, Tensor, Tensor]] = []   # (group's params, position, parameter, its view)
        try:
            for group in self.param_groups:
                params = group["params"]
                for i, p in enumerate(params):
                    state = self.state.get(p, {})
                    moments = [v for v in state.values() if torch.is_tensor(v) and v.dim() == 2]
                    if p.grad is None or not _transposable(p) or not _transposable(p.grad) or not all(map(_transposable, moments)):
                        continue
                    view = p.t()                                           # [n, d] contiguous, same memory
                    view.grad = p.grad.t()
                    if state:
                        self.state[view] = {k: v.t() if torch.is_tensor(v) and v.dim() == 2 else v for k, v in state.items()}
                    params[i] = view
                    swapped.append((params, i, p, view))
            return super().step(closure)
        finally:
            for params, i, p, view in swapped:   # back to the parameter; new moments take its layout
                params[i] = p
                state = self.state.pop(view, None)
                if state is not None:
                    self.state[p] = {k: v.t() if torch.is_tensor(v) and v.dim() == 2 else v for k, v in state.items()}
                view.grad = None


def make_adam(sae, lr: float) -> torch.optim.Adam:
    """Adam (β 0.9/0.999, no weight decay) over the SAE's parameter groups, with the
    fused kernel where torch has one for these parameters (the same update): measured
    on CPU at 16,384 x 576, ~40 ms per optimiser step, and a whole training step 3-4 %
    faster than with the per-tensor Adam."""
    kwargs = dict(lr=lr, betas=(0.9, 0.999), weight_decay=0.0)
    try:
        return ContiguousAdam(sae.param_groups(), fused=True, **kwargs)
    except (RuntimeError, TypeError):
        return torch.optim.Adam(sae.param_groups(), **kwargs)
