"""Settings of one training run. CLI flags map one-to-one to these fields."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from ..errors import ConfigError


@dataclass
class TrainConfig:
    n_tokens: int = 1_200_000        # training tokens (steps = n_tokens // batch_size); several epochs of a small store
    batch_size: int = 1024           # rows per step; small batches make more, cheaper steps on 2 CPU cores
    lr: float = 1e-3                 # Adam peak learning rate
    lr_warmup_fraction: float = 0.01  # short linear warm-up: keeps the first Adam steps from killing latents
    lr_decay_fraction: float = 0.2   # linear decay to 0 over the last 20 % (the paper's recipe)
    sparsity_warmup_fraction: float = 0.05  # λ (or the L0 coefficient) ramps up linearly over the first 5 %
    grad_clip: float = 1.0           # global gradient-norm clip (the paper's recipe)
    dead_window_tokens: int = 0      # a latent is dead after this many tokens without firing; 0 -> min(10M, n_tokens/4)
    log_every: int = 20              # steps between metrics.jsonl lines
    checkpoint_every: int = 200      # steps between checkpoints (0: only at the end)
    dtype: str = "auto"              # "float32" | "bfloat16" (autocast for the matmuls) | "auto" (see loop.resolve_dtype)
    seed: int = 0                    # initialisation and data order

    def validate(self) -> None:
        checks = [
            (self.n_tokens > 0, "--train-tokens must be positive"),
            (self.batch_size > 0, "--batch-size must be positive"),
            (self.n_tokens >= self.batch_size, f"--train-tokens ({self.n_tokens}) must be at least one batch ({self.batch_size})"),
            (math.isfinite(self.lr) and 0 < self.lr <= 1, f"--lr must be in (0, 1], got {self.lr}"),
            (0 <= self.lr_warmup_fraction < 1 and 0 <= self.lr_decay_fraction <= 1, "lr_warmup_fraction must be in [0, 1) and lr_decay_fraction in [0, 1]"),
            (self.lr_warmup_fraction + self.lr_decay_fraction <= 1, "lr_warmup_fraction + lr_decay_fraction exceed the run (> 1)"),
            (0 <= self.sparsity_warmup_fraction < 1, "sparsity_warmup_fraction must be in [0, 1)"),
            (self.grad_clip > 0, "grad_clip must be positive"),
            (self.dead_window_tokens >= 0, "--dead-window must be ≥ 0"),
            (self.log_every > 0 and self.checkpoint_every >= 0, "--log-every must be positive and --checkpoint-every ≥ 0"),
            (self.dtype in ("float32", "bfloat16", "auto"), f"--train-dtype must be float32, bfloat16 or auto, got {self.dtype!r}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)

    @property
    def total_steps(self) -> int:
        return self.n_tokens // self.batch_size

    @property
    def dead_window(self) -> int:
        """Tokens without firing after which a latent counts as dead. The paper's 10⁷
        scaled down for short runs so that dead latents are seen (and revived by
        AuxK) within the run."""
        return self.dead_window_tokens or int(min(10_000_000, max(self.batch_size, self.n_tokens // 4)))

    def to_dict(self) -> dict:
        return asdict(self)
