"""FLOPs of one training step, counted as our implementation computes it. Each SAE
class picks its count (`SAE.step_flops`); scaling/ and train/ ask the class.

Only matrix products are counted (2 FLOPs per multiply-add); element-wise work
(ReLU, top-k selection, Adam, the decoder-norm penalty) is O(B·n) or O(n·d), a
fraction ~1/d of the products, and is left out, as the paper's "compute ∝ n·T" does.

Per step, with B rows, input width d, n latents, k selected latents per row:

    relu, jumprelu (dense):
        encoder forward      x @ W_enc                      2·B·d·n
        decoder forward      f @ W_dec                      2·B·n·d
        decoder backward     ∂W_dec = fᵀ g,  ∂f = g W_decᵀ  2·(2·B·n·d)
        encoder backward     ∂W_enc = xᵀ ∂pre               2·B·d·n
                             (no ∂x: the input needs no gradient and the encoder
                              does not subtract b_dec)
        total                                               10·B·d·n

    topk, batchtopk (sparse_topk.py):
        encoder forward      dense x @ W_enc, no graph      2·B·d·n
        decoder forward      embedding_bag of k rows        2·B·k·d
        decoder backward     ∂acts (SDDMM), ∂W_dec rows     2·(2·B·k·d)
        encoder backward     ∂xc (embedding_bag; b_dec is subtracted at the input so
                             it needs a gradient), ∂W_enc columns   2·(2·B·k·d)
        total                                               2·B·d·n + 10·B·k·d
      plus AuxK when m = min(aux_k, n_dead) > 0 latents are dead: the same sparse
      decode/backward over m latents, reusing the dense pre-activations  10·B·m·d

batchtopk keeps k·B latents per batch, k per row on average: the same count.
"""

from __future__ import annotations

from typing import NamedTuple


class StepFlops(NamedTuple):
    encoder_forward: int
    decoder_forward: int
    backward: int
    aux: int           # AuxK (topk family) at the given dead count; 0 otherwise

    @property
    def total(self) -> int:
        return self.encoder_forward + self.decoder_forward + self.backward + self.aux


def dense_step_flops(d: int, n: int, B: int) -> StepFlops:
    """relu, jumprelu: every latent is computed and back-propagated."""
    return StepFlops(2 * B * d * n, 2 * B * n * d, 6 * B * n * d, 0)


def sparse_step_flops(d: int, n: int, B: int, k: int, aux_k: int | None = None, n_dead: int = 0) -> StepFlops:
    """topk, batchtopk: a dense encoder forward, then k (and m AuxK) latents per row."""
    k = min(k, n)
    m = min(aux_k if aux_k is not None else max(d // 2, 1), n_dead, n)
    return StepFlops(2 * B * d * n, 2 * B * k * d, 8 * B * k * d, 10 * B * m * d)
