"""Searching a feature database the way a researcher types: a word with or without
its leading space or capital ("dog" finds the features of " dog" and "Dog"), a word
the tokenizer splits ("Debian" = "Deb" + "ian": features ranked over both pieces),
or words of an explanation. Every answer says how the query was read, and an empty
one says why (the token never occurred in the streamed text, no feature is labelled).

    result = search_features(db, "Paris", tokenizer)
    result.by_token, result.by_explanation, result.notes
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..token_text import segments_of
from .db import FeatureDB
from .records import FeatureSummary
from .schema import FeatureDBError

BY = ("all", "tokens", "explanation")


@dataclass
class TokenMatch:
    feature_id: int
    activation: float  # on the matched token; over a split word, the mean over its pieces
    token: str         # what matched, as shown: " Paris", or "Deb|ian" for a split word
    explanation: str | None = None


@dataclass
class SearchResult:
    query: str
    by_token: list[TokenMatch] = field(default_factory=list)
    by_explanation: list[FeatureSummary] = field(default_factory=list)
    by_logit: list[TokenMatch] = field(default_factory=list)  # features whose decoder promotes the word (activation: see logit_how)
    logit_how: str = ""
    notes: list[str] = field(default_factory=list)  # how the query was read; why a list is empty


def forms(query: str) -> list[tuple[str, bool]]:
    """(form, as typed): the query as typed and with/without a leading space, then
    lower-cased and capitalised (those only where they are one token: "paris" split
    into "par" + "is" would match every "par" and "is")."""
    word = query.strip()
    typed = [query, " " + word, word]
    cased = [f for w in (word.lower(), word[:1].upper() + word[1:]) for f in (" " + w, w)]
    out: dict[str, bool] = {}
    for f, as_typed in [(f, True) for f in typed] + [(f, False) for f in cased]:
        if f.strip() and f not in out:
            out[f] = as_typed
    return list(out.items())


def _pieces(db: FeatureDB, form: str, tokenizer) -> list[int]:
    if tokenizer is not None:
        return list(tokenizer(form, add_special_tokens=False)["input_ids"])
    return db.vocab_ids([form])[:1]  # no tokenizer: only whole vocabulary entries


def search_features(db: FeatureDB, query: str, tokenizer=None, by: str = "all", kind: str = "feature",
                    limit: int = 50, rank_logit=None) -> SearchResult:
    """tokenizer: the run's (to split phrases); without it only forms that are one
    vocabulary entry are looked up. rank_logit(token_ids, top) -> [RankedFeature]:
    every feature's logit effect on those tokens (steering/concepts.rank_logit_effect,
    needs the model); without it the stored top promoted tokens are searched."""
    if by not in BY:
        raise FeatureDBError(f"cannot search by {by!r}: use one of {', '.join(BY)}")
    if not query.strip():
        raise FeatureDBError("search text is blank: type a word, a phrase or words of an explanation")
    result = SearchResult(query)
    if by in ("all", "tokens"):
        _by_tokens(db, query, tokenizer, kind, limit, result)
        _by_logit(db, query, tokenizer, kind, limit, result, rank_logit if kind == "feature" else None)
    if by in ("all", "explanation"):
        result.by_explanation = db.list(kind=kind, explanation=query.strip(), sort="max_act", limit=limit)
        if not result.by_explanation:
            n = db.n_explained(kind)
            result.notes.append(f"No {kind} explanation contains {query.strip()!r}" + (
                f" ({n:,} {kind}s have one)." if n else f": no {kind} is labelled yet (`monosemantic explain RUN`)."))
    return result


def _by_tokens(db: FeatureDB, query: str, tokenizer, kind: str, limit: int, result: SearchResult) -> None:
    best: dict[int, TokenMatch] = {}
    looked, missing, split = [], [], []
    for form, as_typed in forms(query):
        ids = _pieces(db, form, tokenizer)
        if not ids or (len(ids) > 1 and not as_typed):
            continue
        shown = "|".join(s.text for s in segments_of(db.decode(ids)))
        index = db.token_index(ids, kind)
        looked.append(repr(shown))
        if len(ids) > 1:
            split.append(f"{form!r} is {len(ids)} tokens ({' + '.join(repr(t) for t in db.decode(ids) if t)})")
        if not index:
            missing.append(repr(shown))
            continue
        scores: dict[int, float] = {}
        for tok in ids:  # a split word: the mean over its pieces (0 where a piece's list lacks the feature)
            for fid, act in index.get(tok, []):
                scores[fid] = scores.get(fid, 0.0) + act / len(ids)
        for fid, act in scores.items():
            if fid not in best or act > best[fid].activation:
                best[fid] = TokenMatch(fid, act, shown)
    hits = sorted(best.values(), key=lambda h: -h.activation)[:limit]
    labels = db.explanations_of([h.feature_id for h in hits], kind)
    for h in hits:
        h.explanation = labels.get(h.feature_id)
    result.by_token = hits
    if split:
        result.notes.append("; ".join(split) + f": {kind}s ranked by their mean activation over the pieces.")
    if not looked:
        result.notes.append(f"{query.strip()!r} is not a token of the vocabulary (the server has no tokenizer to split it).")
    elif not hits:
        n = db.meta.get("n_tokens", 0)
        result.notes.append(f"No {kind} fires on {', '.join(missing)}: "
                            f"{'that token' if len(missing) == 1 else 'these tokens'} never occurred in the {n:,} tokens "
                            f"this database streamed (build it over more text with `monosemantic features RUN --tokens N`).")


def _by_logit(db: FeatureDB, query: str, tokenizer, kind: str, limit: int, result: SearchResult, rank_logit) -> None:
    """Features whose decoder direction promotes the word's first token (in any form):
    found from the weights alone, so a word the streamed text never held still finds them."""
    firsts = list(dict.fromkeys(ids[0] for form, as_typed in forms(query)
                                if (ids := _pieces(db, form, tokenizer)) and (as_typed or len(ids) == 1)))
    if not firsts:
        return
    shown = "|".join(t for t in (db.decode([i])[0] for i in firsts))
    if rank_logit is not None:
        hits = [TokenMatch(r.feature, r.score, shown) for r in rank_logit(firsts, limit)]
        result.logit_how = (f"z-score of the mean logit effect on {', '.join(repr(t) for t in shown.split('|'))} "
                            "against the whole vocabulary")
    else:
        best: dict[int, TokenMatch] = {}
        for fid, tok, value in db.promoting(firsts, kind):
            best.setdefault(fid, TokenMatch(fid, value, db.decode([tok])[0]))
        hits = list(best.values())[:limit]
        result.logit_how = "logit effect, among each feature's most promoted tokens (start the server with the model to rank every feature)"
    labels = db.explanations_of([h.feature_id for h in hits], kind)
    for h in hits:
        h.explanation = labels.get(h.feature_id)
    result.by_logit = hits
