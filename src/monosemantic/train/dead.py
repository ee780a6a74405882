"""Which latents are dead: not fired for `window` tokens."""

from __future__ import annotations

import torch


class DeadTracker:
    """Counts, per latent, the tokens seen since it last fired. A latent is dead once
    that count reaches `window`; before `window` tokens have been seen in total no
    latent is called dead (there is not enough evidence yet)."""

    def __init__(self, n_latents: int, window: int, device: torch.device | str | None = None):
        self.window = int(window)
        self.since_fired = torch.zeros(n_latents, dtype=torch.long, device=device)  # [n] tokens since last firing

    def update(self, fired: torch.Tensor, n_tokens: int) -> None:
        """fired: [n] bool, latents that fired in a batch of n_tokens."""
        self.since_fired += n_tokens
        self.since_fired[fired] = 0

    @property
    def mask(self) -> torch.Tensor:
        """[n] bool, True for dead latents."""
        return self.since_fired >= self.window

    @property
    def fraction(self) -> float:
        return float(self.mask.float().mean())

    def state_dict(self) -> dict:
        return {"window": self.window, "since_fired": self.since_fired.clone()}

    def load_state_dict(self, state: dict) -> None:
        self.window = int(state["window"])
        self.since_fired = state["since_fired"].to(self.since_fired.device, copy=True)
