"""`monosemantic flops | sweep | scaling fit|plan`: results on a tiny sweep, and bad
inputs answered with one line and exit status 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from monosemantic.cli.main import main


def _one_line_error(capsys, argv: list[str], fragment: str) -> None:
    code = main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2, (argv, err)
    assert len(err) == 1 and err[0].startswith("monosemantic: error:") and fragment in err[0], (argv, err)


def test_bad_inputs_are_one_line_usage_errors(capsys, tmp_path, store, make_spec, make_store, tiny_sweep):
    broken = tmp_path / "broken.json"
    broken.write_text("{\"activations\": ")
    _one_line_error(capsys, ["sweep", str(broken)], "cannot read sweep spec")
    _one_line_error(capsys, ["sweep", str(make_spec(tmp_path / "typo.json", store, l1=2.0))], "unknown key")
    _one_line_error(capsys, ["sweep", str(make_spec(tmp_path / "nostore.json", tmp_path / "missing.npy"))], "missing.npy")
    _one_line_error(capsys, ["sweep", str(tmp_path / "absent.json")], "cannot read sweep spec")
    other = make_spec(tmp_path / "other.json", make_store(tmp_path / "other.npy", seed=1))
    _one_line_error(capsys, ["sweep", str(other), "--out", str(tiny_sweep)], "compare like with like")
    _one_line_error(capsys, ["sweep", str(other), "--jobs", "0"], "--jobs")
    for action in (["fit"], ["plan", "--budget", "1e12"], ["family"]):
        _one_line_error(capsys, ["scaling", action[0], str(tmp_path / "nosweep"), *action[1:]], "not a sweep directory")
    for budget in ("0", "-1e12", "nan", "inf"):  # passed as --budget=VALUE: argparse reads "-1e12" alone as an option
        _one_line_error(capsys, ["scaling", "plan", str(tiny_sweep), f"--budget={budget}"], "--budget must be positive")
    _one_line_error(capsys, ["scaling", "plan", str(tiny_sweep), "--hours=-1"], "--hours must be positive")
    _one_line_error(capsys, ["scaling", "family", str(tiny_sweep), "--factor", "1"], "--factor")
    _one_line_error(capsys, ["flops", "--latents", "0", "--d", "576"], "--latents must be positive")
    assert not (tmp_path / "nosweep").exists()


def test_flops_fit_and_plan_commands(capsys, tmp_path, tiny_sweep):
    assert main(["flops", "--latents", "5", "--d", "3", "--batch", "4", "--tokens", "41"]) == 0
    out = capsys.readouterr().out
    assert "per step 6.0000e+02 FLOPs" in out and "10 steps (40 tokens): 6.0000e+03 FLOPs" in out

    assert main(["scaling", "fit", str(tiny_sweep), "--plots", str(tmp_path / "plots"), "--bootstrap", "200"]) == 0
    out = capsys.readouterr().out
    saved = json.loads((tiny_sweep / "scaling_fit.json").read_text())
    assert saved["n_runs"] == 4 and len(saved["frontier"]) == 3
    assert set(saved["laws"]) == {"loss", "n_latents", "n_tokens"} and saved["holdout"]["budgets_used"] == 2
    assert f"{saved['laws']['loss']['exponent']:+.3f}" in out and "held-out largest budget" in out
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == ["loss_vs_compute.png", "optimal_allocation.png"]

    budgets = [1e9, 1e10]
    tokens = []
    for budget in budgets:
        assert main(["scaling", "plan", str(tiny_sweep), "--budget", f"{budget:g}"]) == 0
        line = capsys.readouterr().out
        assert f"budget {budget:.3e} FLOPs" in line and "predicted loss" in line
        tokens.append(int(line.split(" features on ")[1].split(" tokens")[0].replace(",", "")))
    assert tokens[1] > tokens[0]
    assert main(["scaling", "plan", str(tiny_sweep), "--hours", "0.01"]) == 0
    assert "h on this machine" in capsys.readouterr().out


@pytest.mark.parametrize("argv", [["sweep", "--help"], ["scaling", "fit", "--help"]])
def test_help_points_to_docs_that_exist(argv, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 0
    assert "docs/scaling.md" in capsys.readouterr().out.replace("\n", " ")
    assert (Path(__file__).parents[2] / "docs" / "scaling.md").is_file()
