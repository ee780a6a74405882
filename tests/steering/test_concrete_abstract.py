"""Concrete vs abstract and held-out AUROC on planted per-text activations (pure
logic), plus one pass of the command on the tiny model."""

from __future__ import annotations

import json

import pytest
import torch
from steering_helpers import random_sae

from monosemantic.cli.main import main
from monosemantic.sae import save_sae
from monosemantic.steering.catalogue import auroc, p_value, rank_auroc
from monosemantic.steering.concrete_abstract import analyse_kinds, categorise, kind_aurocs

N = 40   # features; 0 fires on both kinds, 1 on concrete only, 2 on abstract only, 3 on negatives, rest noise


def planted(seed: int, n_kind: int = 12, n_neg: int = 24):
    g = torch.Generator().manual_seed(seed)
    kinds = ["concrete"] * n_kind + ["abstract"] * n_kind
    pos = torch.rand(2 * n_kind, N, generator=g)                          # [P, N] noise in [0, 1)
    neg = torch.rand(n_neg, N, generator=g)
    pos[:, :4], neg[:, :4] = 0, 0                                        # the planted features are silent elsewhere
    pos[:, 0] = 1 + torch.rand(2 * n_kind, generator=g)                 # both kinds
    pos[:n_kind, 1] = 1 + torch.rand(n_kind, generator=g)               # concrete only
    pos[n_kind:, 2] = 1 + torch.rand(n_kind, generator=g)               # abstract only
    neg[:, 3] = 1 + torch.rand(n_neg, generator=g)                      # the negatives' feature
    return pos, kinds, neg


def test_auroc_matches_definition():
    pos, neg = torch.tensor([[3.0, 0.0], [1.0, 0.0]]), torch.tensor([[2.0, 0.0], [0.0, 0.0], [1.0, 0.0]])
    a = auroc(pos, neg)
    # feature 0: pairs (3>2, 3>0, 3>1, 1<2, 1>0, 1=1) -> (4 + 0.5) / 6; feature 1 silent everywhere -> 0.5
    assert a.tolist() == pytest.approx([4.5 / 6, 0.5])
    big = torch.randn(7, 9000), torch.randn(5, 9000)                     # many columns = the pairwise definition
    direct = ((big[0][:, None] > big[1][None]).double() + 0.5 * (big[0][:, None] == big[1][None]).double()).mean((0, 1))
    assert torch.allclose(auroc(*big), direct, atol=1e-12)
    assert p_value([5, 6, 7], [1, 2, 3]) < 0.06 and p_value([0, 0], [0, 0]) == 1.0


def test_planted_shared_feature_is_found_and_one_kind_ones_are_not_shared():
    result, _ = analyse_kinds("planted", planted(0), planted(1), threshold=0.8, off=0.6)
    cats = {f.feature: f.category for f in result.features}
    assert cats.get(0) == "shared"
    assert cats.get(1) == "concrete-only" and cats.get(2) == "abstract-only"
    assert 3 not in cats                                                 # fires on negatives: never a candidate
    assert result.counts["shared"] >= 1 and result.overlap == pytest.approx(
        result.counts["shared"] / sum(result.counts[k] for k in ("shared", "concrete-only", "abstract-only", "leaning")))
    assert result.features[0].feature == 0                               # shared listed first
    # shuffled labels: the planted features no longer separate positives from negatives
    assert result.null_counts["shared"] == 0


def test_a_train_half_pick_that_fails_held_out_is_unconfirmed():
    train, test = planted(0), planted(1)
    train[0][:12, 5] += 2                     # feature 5 looks concrete-specific on the train half only
    tr, te = kind_aurocs(*train), kind_aurocs(*test)
    cats = categorise(tr, te, 0.8, 0.6)
    assert cats[5] == "unconfirmed" and cats[0] == "shared"
    result, _ = analyse_kinds("fluke", train, test)                      # judged on the test half, not the train one
    assert 5 not in [f.feature for f in result.features] and result.counts["unconfirmed"] >= 1


def test_concept_catalogue_command_on_tiny_model(tiny_model_dirs, lm, tmp_path, capsys):
    save_sae(random_sae(lm.d_model, 32), tmp_path / "sae")
    run = [str(tmp_path), "--model", str(tiny_model_dirs["llama"]), "--layer", "1"]
    out = tmp_path / "cat.json"
    assert main(["concept-catalogue", *run, "--concepts", "code_bugs,food", "--json", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert [c["name"] for c in doc["concepts"]] == ["code_bugs", "food"]
    c = doc["concepts"][0]
    assert c["n_train"] == [24, 24] and c["n_test"] == [24, 24] and 0 <= c["best"]["heldout_auroc"] <= 1
    assert c["best"]["train_auroc"] >= c["steering"]["train_auroc"]      # the best train AUROC is the best
    assert "held-out" in capsys.readouterr().out
    out2 = tmp_path / "ca.json"
    assert main(["concept-catalogue", *run, "--concepts", "code_bugs", "--concrete-abstract", "--json", str(out2)]) == 0
    ca = json.loads(out2.read_text())["concepts"][0]
    assert ca["n_test"] == {"concrete": 12, "abstract": 12, "negative": 24} and set(ca["counts"]) >= {"shared", "concrete-only"}
    # user mistakes: one line, exit 1
    assert main(["concept-catalogue", *run, "--concepts", "food", "--concrete-abstract"]) == 1
    assert main(["concept-catalogue", *run, "--concepts", str(tmp_path / "missing.json")]) == 1
    assert main(["concept-catalogue", *run, "--threshold", "0.3"]) == 1
    err = capsys.readouterr().err
    assert "no positives marked concrete and abstract" in err and "does not exist" in err and "--threshold" in err


def test_rank_auroc_puts_the_planted_feature_first():
    pos, _, neg = planted(2)
    ranked = rank_auroc(pos, neg, top=3)
    assert ranked[0].feature == 0 and ranked[0].score == 1.0
    assert 3 not in [r.feature for r in ranked]
