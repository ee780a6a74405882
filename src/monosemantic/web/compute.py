"""The two requests that run the model: prompt inspection and steered generation.

Steered and unsteered completions decode together as one batch of two rows (row 1
steered, row 0 not), one token per step, so both columns stream at the same pace. Each
step takes the model lock on its own, and the prompt is read in chunks of
`Limits.prefill_tokens`, each under its own hold: a long generation never blocks the
prompt inspector for more than one short forward, and the steering hook exists only
inside the lock. A decoding stops early when it is cancelled (the client went away)
or runs past its compute budget (`Limits.max_request_seconds`); `stopped` says which.
Sampling draws one uniform number per step and inverts both rows' CDFs with it
(common random numbers): where steering does not change the distribution the two
completions stay identical, so every difference is the intervention's."""

from __future__ import annotations

import inspect
import threading
import time
from dataclasses import dataclass
from typing import Iterator, Sequence

import torch

from ..errors import ConfigError
from ..features.prompt import top_for_prompt
from ..steering import concepts as C
from ..steering.generate import check_length, encode_prompt
from ..steering.interventions import DEFAULT_POSITIONS, check_compatible, resolve, steering_fn
from .state import RunState


@dataclass
class TokenFeatures:
    position: int
    token: str
    features: list[tuple[int, float]]  # strongest first


@dataclass
class Inspection:
    tokens: list[TokenFeatures]          # position 0 (the BOS-like sink) left out
    top: list[tuple[int, float, int]]    # (feature, max activation, position)
    selected: list[float] | None = None  # the requested feature's activation per token (same positions)


def count_tokens(lm, text: str) -> int:
    return len(lm.tokenizer(text, add_special_tokens=False)["input_ids"])


def check_prompt_tokens(state: RunState, prompt: str) -> None:
    """The token limit of every model endpoint (characters are checked by pydantic)."""
    n = count_tokens(state.lm, prompt)
    if n == 0:
        raise ConfigError("the prompt has no tokens: type some text")
    if n > state.limits.max_prompt_tokens:
        raise ConfigError(f"the prompt has {n} tokens; the limit is {state.limits.max_prompt_tokens}: shorten it")


def inspect_prompt(state: RunState, prompt: str, k: int = 20, per_token: int = 10, feature: int | None = None) -> Inspection:
    state.ensure_model()
    check_prompt_tokens(state, prompt)
    with state.model_lock:
        result = top_for_prompt(state.db(), state.lm, state.sae, state.layer, prompt, k=k, per_token=per_token,
                                features=[] if feature is None else [feature])
    tokens = [TokenFeatures(i, t, feats) for i, (t, feats) in enumerate(zip(result.tokens, result.per_token)) if i > 0]
    return Inspection(tokens, result.top, None if feature is None else result.selected[feature][1:])


def concept_features(state: RunState, name: str | None, positive: Sequence[str], negative: Sequence[str], top: int = 20):
    """-> (how it was ranked, [RankedFeature]): steering/concepts.py's procedures, the
    same as `monosemantic concept`. Only shipped set names are accepted, never a path."""
    positive = [t for t in positive if t.strip()]
    negative = [t for t in negative if t.strip()]
    if name:
        if name not in C.concept_names():
            raise ConfigError(f"unknown concept {name!r}: choose one of {', '.join(C.concept_names())}")
        concept = C.load_concept(name)
        texts = concept.half("train").positive + concept.half("train").negative
    elif positive and negative:
        concept, texts = None, positive + negative
    else:
        raise ConfigError("choose a concept set, or give texts with the concept and texts without it (one per line)")
    state.ensure_model()
    for text in texts:
        if count_tokens(state.lm, text) > state.limits.max_prompt_tokens:
            raise ConfigError(f"a concept text has more than {state.limits.max_prompt_tokens} tokens: shorten it")
    with state.model_lock:
        if concept is not None:
            return f"concept {concept.name}: contrastive, re-ranked by logit effect (train half)", C.find_concept_features(
                state.lm, state.sae, state.layer, concept.half("train"), top=top)
        return "contrastive (your texts)", C.rank_contrastive(state.lm, state.sae, state.layer, positive, negative, top=top)


@dataclass
class SteerEvent:
    row: str    # "unsteered" | "steered"
    text: str   # newly decoded text (the whole completion when replace)
    replace: bool = False


def _cache_arg(model) -> str:
    """transformers 5.x renamed `past_key_values` to `cache` (the old name warns)."""

    return "cache" if "cache" in inspect.signature(type(model).forward).parameters else "past_key_values"


def _cache_of(out):
    cache = getattr(out, "cache", None)
    return cache if cache is not None else getattr(out, "past_key_values", None)


def _eos_ids(lm) -> set[int]:
    ids = {lm.tokenizer.eos_token_id}
    configured = getattr(getattr(lm.model, "generation_config", None), "eos_token_id", None)
    ids |= set(configured) if isinstance(configured, (list, tuple)) else {configured}
    ids.discard(None)
    return ids


class SteeredDecoding:
    """Validated at construction (errors become 4xx before any streaming starts);
    iterate for SteerEvents."""

    ROWS = ("unsteered", "steered")

    def __init__(self, state: RunState, prompt: str, interventions: Sequence, max_new_tokens: int,
                 temperature: float = 0.7, seed: int = 0, chat: bool = True):
        state.ensure_model()
        check_prompt_tokens(state, prompt)
        self.state, self.lm, self.sae, self.layer = state, state.lm, state.sae, state.layer
        check_compatible(self.lm, self.sae, self.layer)
        plan = resolve(list(interventions), int(self.sae.W_dec.shape[0]), state.max_acts)
        dev = self.lm.device
        self.plan = type(plan)(plan.features.to(dev), plan.modes, plan.values.to(dev))
        self.ids, self.prompt_text = encode_prompt(self.lm, prompt, chat)   # [1, T]
        check_length(self.lm, self.ids.shape[1], max_new_tokens)
        self.max_new_tokens, self.temperature, self.seed = max_new_tokens, temperature, seed
        self.descriptions = [iv.describe() for iv in interventions]
        self.completions = {"unsteered": "", "steered": ""}
        self.stopped: str | None = None       # None (finished), "cancelled" or "budget"
        self._stop_lock = threading.Lock()
        self.finished = False                 # decoded to the end (EOS or max_new_tokens)
        self._prefilling = False

    def cancel(self) -> None:
        """Stop before the next forward (from any thread); a no-op once finished."""
        with self._stop_lock:
            if self.stopped is None and not self.finished:
                self._stop("cancelled")

    def _stop(self, why: str) -> None:
        self.stopped = why
        self.state.stopped_early[why] += 1

    def _should_stop(self, deadline: float) -> bool:
        with self._stop_lock:
            if self.stopped is None and time.monotonic() > deadline:
                self._stop("budget")
            return self.stopped is not None

    def run(self) -> None:
        """Decode to the end (or to a stop) without streaming."""
        for _ in self:
            pass

    def _patch(self):
        # the generated positions only, as `steer` does by default: the prompt's last
        # position (the decoding loop's first forward) and every decoding step
        fn = steering_fn(self.sae.to(self.lm.device), self.plan, positions=DEFAULT_POSITIONS)

        def patched(hidden: torch.Tensor) -> torch.Tensor:  # [2, T, d]: steer row 1 only
            if self._prefilling:
                return hidden
            return torch.cat([hidden[:1], fn(hidden[1:])], 0)

        return patched

    def __iter__(self) -> Iterator[SteerEvent]:
        lm, tok = self.lm, self.lm.tokenizer
        eos = _eos_ids(lm)
        patched = self._patch()
        gen = torch.Generator().manual_seed(self.seed)
        deadline = time.monotonic() + self.state.limits.max_request_seconds
        inputs = self.ids.repeat(2, 1).to(lm.device)                             # [2, T]
        past = None

        def forward(ids: torch.Tensor):
            with self.state.model_lock, torch.inference_mode(), lm.patch_residual(self.layer, patched):
                return lm.model(input_ids=ids, use_cache=True, **({} if past is None else {_cache_arg(lm.model): past}))

        chunk = max(1, self.state.limits.prefill_tokens)
        self._prefilling = True                 # the prompt but its last chunk is read unsteered
        while inputs.shape[1] > chunk:  # the prompt but its last chunk, one lock hold each
            if self._should_stop(deadline):
                return
            past = _cache_of(forward(inputs[:, :chunk]))
            inputs = inputs[:, chunk:]
        self._prefilling = False
        out_ids: list[list[int]] = [[], []]
        done = [False, False]
        shown = ["", ""]  # what each row has streamed so far
        for _ in range(self.max_new_tokens):
            if self._should_stop(deadline):
                return
            out = forward(inputs)
            past = _cache_of(out)
            logits = out.logits[:, -1].float()                                   # [2, vocab]
            if self.temperature > 0:
                cdf = torch.softmax(logits / self.temperature, -1).cumsum(-1)    # [2, vocab]
                u = torch.rand(1, generator=gen).to(cdf.device) * cdf[:, -1:]
                nxt = torch.searchsorted(cdf, u).clamp_max(cdf.shape[1] - 1)[:, 0]
            else:
                nxt = logits.argmax(-1)
            for row in (0, 1):
                if done[row]:
                    continue
                t = int(nxt[row])
                if t in eos:
                    done[row] = True
                    continue
                before = shown[row]
                out_ids[row].append(t)
                text = tok.decode(out_ids[row], skip_special_tokens=True)
                self.completions[self.ROWS[row]] = text
                # a character whose last bytes are still to come decodes as a trailing "�": hold it back
                shown[row] = visible = text.rstrip("\ufffd")
                if len(visible) > len(before) and visible.startswith(before):
                    yield SteerEvent(self.ROWS[row], visible[len(before):])
                elif visible != before:  # the text before changed (rare): resend the row
                    yield SteerEvent(self.ROWS[row], visible, replace=True)
            if all(done):
                break
            inputs = nxt[:, None]                                                # [2, 1]
        for row, name in enumerate(self.ROWS):  # a character left incomplete at the end: its bytes as they are
            text = self.completions[name]
            if text != shown[row]:
                yield SteerEvent(name, text[len(shown[row]):]) if text.startswith(shown[row]) else SteerEvent(name, text, replace=True)
        with self._stop_lock:
            self.finished = self.stopped is None
