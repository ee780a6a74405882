"""A causal LM with the three operations the pipeline needs: run it only up to
block L (skipping later blocks and the lm_head is worth ~2.4x on the embedded model),
read the residual stream after block L, and replace it there."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Callable, Iterator

import torch
from torch import nn

from ..errors import ModelError

ResidualFn = Callable[[torch.Tensor], torch.Tensor]


def _cache_kwargs(cache) -> dict:
    """No KV cache unless one is given (then the forward reads and extends it)."""
    return {"use_cache": False} if cache is None else {"use_cache": True, "cache": cache}


class _StopForward(Exception):
    def __init__(self, hidden: torch.Tensor):
        self.hidden = hidden


def _hidden_of(output) -> torch.Tensor:
    # Decoder blocks return a tensor (Llama, Gemma in transformers 5) or a tuple (GPT-2).
    return output[0] if isinstance(output, tuple) else output


def _with_hidden(output, hidden: torch.Tensor):
    return (hidden, *output[1:]) if isinstance(output, tuple) else hidden


def text_config(model: nn.Module):
    """The language model's config: a vision-language model nests it (text_config)."""
    return model.config.get_text_config()


# model.text_model: Idefics3/SmolVLM; model.language_model: LLaVA, Gemma 3, Qwen2-VL.
def find_blocks(model: nn.Module) -> nn.ModuleList:
    """The list of decoder blocks, for Llama/Gemma (model.layers), GPT-2
    (transformer.h), the language model of a vision-language model, and anything else
    holding one ModuleList of n_layers blocks."""
    n_layers = text_config(model).num_hidden_layers
    for path in ("model.layers", "transformer.h", "model.language_model.layers", "model.text_model.layers", "gpt_neox.layers"):
        module = model
        for part in path.split("."):
            module = getattr(module, part, None)
        if isinstance(module, nn.ModuleList) and len(module) == n_layers:
            return module
    candidates = [m for m in model.modules() if isinstance(m, nn.ModuleList) and len(m) == n_layers]
    if len(candidates) != 1:
        raise ModelError(f"cannot find the decoder blocks of {type(model).__name__}: unsupported architecture")
    return candidates[0]


def find_final_norm(model: nn.Module) -> nn.Module:
    for path in ("model.norm", "transformer.ln_f", "model.language_model.norm", "model.text_model.norm", "gpt_neox.final_layer_norm"):
        module = model
        for part in path.split("."):
            module = getattr(module, part, None)
        if isinstance(module, nn.Module):
            return module
    raise ModelError(f"cannot find the final norm of {type(model).__name__}: unsupported architecture")


@dataclass
class LanguageModel:
    model: nn.Module
    tokenizer: object
    name: str
    dtype_reason: str = ""
    blocks: nn.ModuleList = field(init=False)

    def __post_init__(self) -> None:
        self.blocks = find_blocks(self.model)

    # --- facts --------------------------------------------------------------
    @property
    def n_layers(self) -> int:
        return len(self.blocks)

    @property
    def d_model(self) -> int:
        return text_config(self.model).hidden_size

    @property
    def vocab_size(self) -> int:
        return self.model.get_output_embeddings().weight.shape[0]

    @property
    def dtype(self) -> torch.dtype:
        return next(self.model.parameters()).dtype

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def default_layer(self) -> int:
        return self.n_layers // 2

    @property
    def bos_id(self) -> int:
        """Token put at position 0 of every context so the attention sink lands
        there (its norm is ~100x the others; it is then dropped)."""
        tok = self.tokenizer
        for candidate in (tok.bos_token_id, tok.eos_token_id):
            if candidate is not None:
                return int(candidate)
        return 0

    @property
    def sep_id(self) -> int:
        """Token between two documents packed into one context."""
        tok = self.tokenizer
        endoftext = tok.convert_tokens_to_ids("<|endoftext|>") if "<|endoftext|>" in tok.get_vocab() else None
        for candidate in (endoftext, tok.eos_token_id, tok.bos_token_id):
            if candidate is not None:
                return int(candidate)
        return 0

    @property
    def final_norm(self) -> nn.Module:
        return find_final_norm(self.model)

    @property
    def unembed(self) -> torch.Tensor:
        return self.model.get_output_embeddings().weight  # [vocab, d]

    def hook_name(self, layer: int) -> str:
        """The TransformerLens/SAELens name of the residual after block `layer`."""
        return f"blocks.{layer}.hook_resid_post"

    def check_layer(self, layer: int) -> int:
        if not isinstance(layer, int) or not 0 <= layer < self.n_layers:
            raise ModelError(
                f"layer {layer} is out of range: {self.name} has {self.n_layers} layers (0..{self.n_layers - 1})"
            )
        return layer

    # --- running ------------------------------------------------------------
    def _to_ids(self, input_ids: torch.Tensor) -> torch.Tensor:
        if input_ids.dim() == 1:
            input_ids = input_ids[None]
        return input_ids.to(self.device)

    @torch.inference_mode()
    def residual(self, input_ids: torch.Tensor, layer: int, attention_mask: torch.Tensor | None = None, cache=None,
                 **model_inputs) -> torch.Tensor:
        """Residual stream after block `layer`, [B, T, d], running blocks 0..layer only
        (after the positions held in `cache`, a transformers Cache, when given).
        model_inputs: passed to the model's forward (a vision-language model's
        pixel_values and the other outputs of its processor)."""
        return self.residuals(input_ids, [layer], attention_mask, cache, **model_inputs)[layer]

    @torch.inference_mode()
    def residuals(self, input_ids: torch.Tensor, layers: list[int], attention_mask: torch.Tensor | None = None,
                  cache=None, **model_inputs) -> dict[int, torch.Tensor]:
        """Residual stream after each block of `layers`, {layer: [B, T, d]}, from one
        forward that stops after the deepest of them."""
        for layer in layers:
            self.check_layer(layer)
        deepest, captured = max(layers), {}

        def keep(layer: int):
            def hook(_module, _inputs, output):
                captured[layer] = _hidden_of(output)
                if layer == deepest:
                    raise _StopForward(captured[layer])
            return hook

        handles = [self.blocks[layer].register_forward_hook(keep(layer)) for layer in set(layers)]
        try:
            self.model(input_ids=self._to_ids(input_ids), attention_mask=attention_mask, **_cache_kwargs(cache), **model_inputs)
        except _StopForward:
            return {layer: captured[layer] for layer in layers}
        finally:
            for handle in handles:
                handle.remove()
        raise RuntimeError("forward finished without reaching the hooked block")  # internal bug

    def logits(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None, cache=None,
               last_only: bool = False, **model_inputs) -> torch.Tensor:
        """Full forward, [B, T, vocab] ([B, 1, vocab] with last_only: the unembedding of the
        last position only); honours any active patch_residual; `cache` (a transformers
        Cache) holds earlier positions and receives these; model_inputs as in `residuals`."""
        extra = {"logits_to_keep": 1} if last_only else {}
        with torch.inference_mode():
            return self.model(input_ids=self._to_ids(input_ids), attention_mask=attention_mask, **_cache_kwargs(cache),
                              **extra, **model_inputs).logits

    @contextlib.contextmanager
    def patch_residual(self, layer: int, fn: ResidualFn) -> Iterator[None]:
        """Replace the residual after block `layer` by fn(residual) in every forward
        (and `generate`) run inside the block."""
        self.check_layer(layer)

        def patch(_module, _inputs, output):
            hidden = _hidden_of(output)
            return _with_hidden(output, fn(hidden).to(hidden.dtype))

        handle = self.blocks[layer].register_forward_hook(patch)
        try:
            yield
        finally:
            handle.remove()

    @contextlib.contextmanager
    def capture_residual(self, layer: int) -> Iterator[list[torch.Tensor]]:
        """Collect the residual after block `layer` of each forward inside the block."""
        self.check_layer(layer)
        captured: list[torch.Tensor] = []
        handle = self.blocks[layer].register_forward_hook(lambda _m, _i, out: captured.append(_hidden_of(out)))
        try:
            yield captured
        finally:
            handle.remove()
