"""What every SAE shares: the config, the typed forward output, the four tensors
(SAELens names and shapes) and the hooks the trainer calls.

One file per architecture (relu.py, topk.py, batchtopk.py, jumprelu.py) holds its
encoder, its loss and its initialisation; registry.py maps a name to a class."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Callable, ClassVar

import torch
import torch.nn as nn
from torch import Tensor

from ..errors import ConfigError
from .flops import StepFlops, dense_step_flops


def option(default, help: str, *, flag: str | None = None, parse: Callable[[str], object] | None = None):
    """A config field that is also a CLI flag of `train` and `pipeline` (cli/train.py
    generates them): `flag` defaults to --field-name, `parse` to int or float from the
    annotation (give one for anything else, e.g. a comma-separated list); the help is
    prefixed with the architectures whose class lists the field in `uses`."""
    return field(default=default, metadata={"help": help, "flag": flag, "parse": parse})


@dataclass
class SAEConfig:
    """Settings of every architecture. One that needs its own settings subclasses this
    (with `option` fields) in its own file and names it as `config_class`."""

    architecture: str                # a name in registry.ARCHITECTURES
    d_in: int                        # width of the activations (the model's d_model)
    n_latents: int                   # dictionary size (SAELens: d_sae)
    k: int = option(32, "active latents per token (batchtopk: the mean)")
    l1_coefficient: float = option(3.0, "sparsity coefficient λ", flag="--l1")  # inputs scaled to E‖x‖=√d; 3 measured best for the embedded model (FVE 0.77, L0 34)
    aux_k: int | None = option(None, "AuxK: latents modelling the residual (default d_in // 2)")
    aux_coefficient: float = option(1 / 32, "AuxK loss weight (Gao et al. 2024)")
    l0_coefficient: float = option(1.0, "L0 penalty coefficient")
    jumprelu_bandwidth: float | None = option(None, "ε of the rectangle kernel (default: from the first batch)")
    jumprelu_init_threshold: float | None = option(None, "θ at step 0 (default: from the first batch)")
    jumprelu_preact_coefficient: float = option(0.0, "weight of the pre-activation loss Σᵢ ReLU(θᵢ − preᵢ)")
    norm_scale: float = 1.0          # the store's scale s (training inputs are s·x); folded into the weights on save

    @property
    def effective_aux_k(self) -> int:
        return min(self.aux_k if self.aux_k is not None else max(self.d_in // 2, 1), self.n_latents)

    def to_dict(self) -> dict:
        return asdict(self)

    def validate(self) -> None:
        from .registry import ALL_ARCHITECTURES as ARCHITECTURES

        def bad(msg: str) -> ConfigError:
            return ConfigError(f"SAE config: {msg}")

        if self.architecture not in ARCHITECTURES:
            raise bad(f"unknown architecture {self.architecture!r}; choose one of {sorted(ARCHITECTURES)}")
        for name in ("d_in", "n_latents", "k"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
                raise bad(f"{name} must be a positive integer, got {v!r}")
        if self.aux_k is not None and (isinstance(self.aux_k, bool) or not isinstance(self.aux_k, int) or self.aux_k <= 0):
            raise bad(f"aux_k must be a positive integer or None, got {self.aux_k!r}")
        for name in ("l1_coefficient", "aux_coefficient", "l0_coefficient", "jumprelu_preact_coefficient"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
                raise bad(f"{name} must be a finite number >= 0, got {v!r}")
        for name in ("jumprelu_bandwidth", "jumprelu_init_threshold", "norm_scale"):
            v = getattr(self, name)
            if v is None and name != "norm_scale":
                continue
            if not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
                raise bad(f"{name} must be a finite number > 0, got {v!r}")
        problem = ARCHITECTURES[self.architecture].config_problem(self)
        if problem:
            raise bad(problem)


class ForwardOutput:
    """What `SAE.forward` returns. `acts` may be given as a zero-argument function: the
    TopK family trains on [B, k] values and only builds the [B, n] matrix when a caller
    reads `acts` (the training loop never does; a [B, n] write per step cost ~10 %)."""

    __slots__ = ("x_hat", "_acts", "loss", "terms", "n_active", "fired")

    def __init__(self, x_hat: Tensor, acts: Tensor | Callable[[], Tensor], loss: Tensor, terms: dict[str, Tensor],
                 n_active: Tensor | None, fired: Tensor):
        self.x_hat = x_hat          # [B, d] reconstruction (in the units of the input)
        self._acts = acts           # [B, n] dense activations ≥ 0 (topk family: detached, for metrics only)
        self.loss = loss            # scalar: what the trainer back-propagates
        self.terms = terms          # unweighted parts of the loss, e.g. {"mse", "l1"}; detached
        self.n_active = n_active    # [B] int64, nonzero latents per row (L0)
        self.fired = fired          # [n] bool, latents that fired at least once in this batch

    @property
    def acts(self) -> Tensor:
        if callable(self._acts):
            self._acts = self._acts()
        return self._acts


def mse_term(x_hat: Tensor, x: Tensor) -> Tensor:
    """‖x − x̂‖² summed over d, averaged over the batch: the paper's reconstruction
    term, shared by every architecture so their losses compare."""
    return (x_hat.float() - x.float()).pow(2).sum(-1).mean()


class SAE(nn.Module):
    """Base: x̂ = acts @ W_dec + b_dec. Subclasses define encode/forward.

    Everything the rest of the package needs to know about an architecture is a class
    attribute or method here, so that adding one is a new file and a registry line."""

    config_class: ClassVar[type[SAEConfig]] = SAEConfig
    uses: ClassVar[tuple[str, ...]] = ()          # the config fields this architecture reads (CLI help)
    sparsity_knob: ClassVar[str] = "k"            # the config field a sweep holds fixed (and names runs by)
    knob_label: ClassVar[str] = "k"               # run-name prefix of the knob: k32, l1_3
    penalty_term: ClassVar[str | None] = None     # the loss term the knob weighs (scaling loss = mse + knob·term)
    bf16_safe: ClassVar[bool] = False             # bfloat16 autocast measured at float32's loss (train --train-dtype auto)
    # Attributes outside the config that shape a training step (a class default such as
    # BatchTopK's threshold EMA): checkpoints record them and a resumed run keeps the
    # checkpoint's values (train/knobs.py), so changing a default never changes a run
    # half-way. Optimiser lr scales (`param_groups`) are recorded by the trainer.
    knobs: ClassVar[tuple[str, ...]] = ()

    # How SAELens reads the saved weights (io.py writes these into cfg.json).
    saelens_architecture: ClassVar[str] = "standard"
    saelens_imports: ClassVar[tuple[str, ...]] = ()  # plain SAELens architectures loaded as this class
    saelens_renames: ClassVar[dict[str, str]] = {}   # our tensor name -> SAELens's, where they differ
    apply_b_dec_to_input: bool = False   # does the encoder see x − b_dec?
    unit_norm_decoder: bool = False      # rows of W_dec kept at norm 1 by the hooks
    decoder_init_norm: float = 1.0       # norm of each W_dec row at init
    b_dec_at_median: bool = False        # init_from_data puts b_dec at the data's geometric median

    # --- what the class tells the rest of the package --------------------------
    @classmethod
    def config_problem(cls, cfg: SAEConfig) -> str | None:
        """A reason `cfg` cannot build this architecture (beyond SAEConfig's own checks)."""
        return None

    @classmethod
    def step_flops(cls, cfg: SAEConfig, batch_size: int, n_dead: int = 0) -> StepFlops:
        """Matmul FLOPs of one training step as this class computes it (sae/flops.py)."""
        return dense_step_flops(cfg.d_in, cfg.n_latents, batch_size)

    def saelens_cfg(self) -> dict:
        """Architecture-specific keys of SAELens's cfg.json (io.py writes the common ones)."""
        return {"activation_fn_str": "relu", "activation_fn_kwargs": {}}

    def extra_tensors(self) -> dict[str, Tensor]:
        """Tensors saved beside W_enc/W_dec/b_enc/b_dec, in raw units (SAELens names)."""
        return {}

    @classmethod
    def extra_tensor_shapes(cls, cfg: SAEConfig) -> dict[str, tuple[int, ...]]:
        return {}

    @torch.no_grad()
    def load_extra_tensors(self, tensors: dict[str, Tensor]) -> None:
        """Set the extra tensors from a saved file; ValueError says what is wrong."""

    @classmethod
    def absorb_input_shift(cls, tensors: dict[str, Tensor], moved: Tensor) -> dict[str, Tensor]:
        """Tensors from an encoder that differs from ours on subtracting b_dec:
        `moved` = ±b_dec @ W_enc [n] goes into the encoder bias (io.sae_from_tensors)."""
        return tensors | {"b_enc": tensors["b_enc"] + moved}

    def encode_latents(self, x: Tensor, latents: Tensor) -> Tensor:
        """[..., d] -> [..., len(latents)] activations of some latents (steering).
        Default: the full encode; per-latent encoders override it to compute only these."""
        return self.encode(x)[..., latents]

    def __init__(self, cfg: SAEConfig):
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        d, n = cfg.d_in, cfg.n_latents
        # Random directions, W_enc = W_decᵀ (Anthropic April 2024; Gao et al. 2024), biases 0.
        w = torch.randn(n, d)
        w = w / w.norm(dim=1, keepdim=True) * self.decoder_init_norm
        self.W_dec = nn.Parameter(w)                       # [n, d]
        self.W_enc = nn.Parameter(w.t().clone())           # [d, n]
        self.b_enc = nn.Parameter(torch.zeros(n))          # [n]
        self.b_dec = nn.Parameter(torch.zeros(d))          # [d]

    # --- inference -------------------------------------------------------------
    def as_input(self, x: Tensor) -> Tensor:
        """x as the weights' dtype, usable with autograd: a residual read under
        torch.inference_mode (LanguageModel.residual) cannot be saved for backward,
        and a bf16 model's residual cannot be multiplied by float32 weights."""
        if x.is_inference() and not torch.is_inference_mode_enabled():
            x = x.clone()
        return x if x.dtype == self.W_enc.dtype or torch.is_autocast_enabled("cpu") else x.to(self.W_enc.dtype)

    def pre_acts(self, x: Tensor) -> Tensor:
        """[..., d] -> [..., n] encoder pre-activations."""
        x = self.as_input(x)
        if self.apply_b_dec_to_input:
            x = x - self.b_dec
        if x.dim() == 2:
            return torch.addmm(self.b_enc, x, self.W_enc)  # bias fused: one pass over [B, n] fewer
        return x @ self.W_enc + self.b_enc

    def encode(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def decode(self, acts: Tensor) -> Tensor:
        return self.as_input(acts) @ self.W_dec + self.b_dec  # [..., d]

    def forward(self, x: Tensor, *, sparsity_scale: float = 1.0, dead_mask: Tensor | None = None) -> ForwardOutput:
        raise NotImplementedError

    # --- trainer hooks ---------------------------------------------------------
    @torch.no_grad()
    def init_from_data(self, sample: Tensor) -> None:
        """Called once before step 0 with a sample of (scaled) training inputs.
        Default: b_dec at the sample's geometric median where `b_dec_at_median`, so
        that no decoder row has to carry the data's mean."""
        if self.b_dec_at_median:
            self.b_dec.copy_(geometric_median(sample.to(self.b_dec.device)).to(self.b_dec.dtype))

    def training_knobs(self) -> dict:
        """{name: value} of the `knobs` attributes, as JSON-like values."""
        return {name: _plain(getattr(self, name)) for name in self.knobs}

    def adopt_knobs(self, values: dict) -> None:
        """Set `knobs` attributes on this instance (a checkpoint's values over the class's)."""
        for name, value in values.items():
            if name not in self.knobs:
                raise KeyError(name)
            setattr(self, name, value)

    def param_groups(self) -> list[dict]:
        """The optimiser's parameter groups; `lr_scale` multiplies the scheduled lr."""
        return [{"params": list(self.parameters()), "lr_scale": 1.0}]

    @torch.no_grad()
    def before_step(self) -> None:
        """After backward, before optimiser.step. Unit-norm architectures remove the
        gradient component parallel to each decoder row (it would only change the
        norm, which after_step undoes), so Adam's moments see the useful part only."""
        if self.unit_norm_decoder and self.W_dec.grad is not None:
            w, g = self.W_dec, self.W_dec.grad                              # [n, d]
            if not g.is_contiguous():
                g = self.W_dec.grad = g.contiguous()
            n, d = w.shape
            # g −= (g·w / ‖w‖²) w per row, as batched [1,d]x[d,1] products: no [n, d]
            # temporaries (the plain form made three and took 4x as long: 237 vs 54 ms
            # at 16,384 x 576 on one loaded core)
            dots = torch.bmm(g.view(n, 1, d), w.view(n, d, 1)).view(n)     # [n] g·w
            sq = torch.linalg.vector_norm(w, dim=1).square_().clamp_min_(1e-24)  # [n] ‖w‖²
            g.view(n, 1, d).baddbmm_(dots.div_(sq).neg_().view(n, 1, 1), w.view(n, 1, d))

    @torch.no_grad()
    def after_step(self) -> None:
        """After optimiser.step: put decoder rows back on the unit sphere."""
        if self.unit_norm_decoder:
            self.W_dec.div_(self.W_dec.norm(dim=1, keepdim=True).clamp_min(1e-12))

    # --- helpers ---------------------------------------------------------------
    @staticmethod
    def _stats(acts: Tensor) -> tuple[Tensor, Tensor]:
        nz = acts.detach() > 0
        return nz.sum(-1), nz.any(0)                        # n_active [B], fired [n]


def _plain(value):
    return list(value) if isinstance(value, tuple) else value


@torch.no_grad()
def geometric_median(points: Tensor, n_iter: int = 100, eps: float = 1e-8) -> Tensor:
    """Weiszfeld's algorithm from the mean, in float64: deterministic for a given
    sample. Gao et al. 2024 initialise b_dec at the geometric median; unlike the mean
    it is not pulled by the few huge-norm tokens (BOS, attention sinks) that residual
    streams contain."""
    p = points.detach().double().reshape(-1, points.shape[-1])
    y = p.mean(0)
    for _ in range(n_iter):
        w = 1.0 / (p - y).norm(dim=1).clamp_min(eps)        # [N]
        y_new = (w[:, None] * p).sum(0) / w.sum()
        if (y_new - y).norm() <= 1e-10 * (1 + y.norm()):
            y = y_new
            break
        y = y_new
    return y.to(points.dtype)
