"""sparsify's TopK (PyPI eai-sparsify) trained on a synthetic stream, as the reference
for benchmarks/synthetic_recovery.py: its SparseCoder with its own defaults (encoder
nn.Linear init, W_dec = the encoder's rows normalised, b_dec 0, no AuxK: sparsify's
auxk_alpha defaults to 0) and its Adam path (lr 2e-4 / sqrt(n / 2^14), linear warm-up
over min(1000, steps/10) steps), the gradient parallel to the decoder rows removed and
the rows renormalised after each step, as its trainer does."""

from __future__ import annotations

import itertools

import torch
from tqdm import tqdm


class SparsifyAsSAE:
    """The two things evals.synthetic.recovery reads: W_dec [n, d] and a dense encode."""

    def __init__(self, coder):
        self.coder, self.training = coder, False
        self.W_dec = coder.W_dec

    @torch.no_grad()
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        out = self.coder.encode(x)
        n = self.coder.num_latents
        return torch.zeros(x.shape[0], n).scatter_(1, out.top_indices, out.top_acts.float())  # [b, n]

    def eval(self):
        return self

    def train(self, mode: bool = True):
        return self


def train_sparsify(stream, d: int, n: int, k: int, steps: int, seed: int = 0) -> tuple[SparsifyAsSAE, dict]:
    from sparsify import SparseCoder, SparseCoderConfig

    torch.manual_seed(seed)
    coder = SparseCoder(d, SparseCoderConfig(num_latents=n, k=k))
    lr = 2e-4 / (n / 2**14) ** 0.5
    opt = torch.optim.Adam(coder.parameters(), lr=lr)
    warmup = max(1, min(1000, steps // 10))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / warmup))
    fvu = l0 = 0.0
    for step, x in tqdm(enumerate(itertools.islice(stream, steps)), total=steps, desc="train sparsify", unit="step"):
        out = coder(x)
        out.fvu.backward()
        coder.remove_gradient_parallel_to_decoder_directions()
        torch.nn.utils.clip_grad_norm_(coder.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        sched.step()
        coder.set_decoder_norm_to_unit_norm()
        if step >= steps - 20:   # the last 20 steps, as a training FVE
            fvu += float(out.fvu.detach()) / min(20, steps)
            l0 += float((out.latent_acts > 0).sum(-1).float().mean()) / min(20, steps)
    return SparsifyAsSAE(coder), {"fve": 1.0 - fvu, "lr": lr}
