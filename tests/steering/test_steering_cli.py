from __future__ import annotations

import pytest
import torch
from steering_helpers import random_sae

from monosemantic.cli.main import main
from monosemantic.sae import save_sae


@pytest.fixture
def tiny_run(tmp_path, tiny_model_dirs, lm):
    sae = random_sae(lm.d_model, 32)
    save_sae(sae, tmp_path / "sae")
    return tmp_path, str(tiny_model_dirs["llama"])


def _one_line_error(capsys, argv) -> str:
    assert main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("monosemantic: error:") and "\n" not in err and "Traceback" not in err
    return err


def test_bad_spec_is_one_line(capsys, tmp_path):
    err = _one_line_error(capsys, ["steer", str(tmp_path), "--prompt", "hi", "--feature", "123=10q"])
    assert "123=10q" in err and "=Nx" in err


def test_cli_errors(capsys, tiny_run, tmp_path):
    run, model = tiny_run
    common = [str(run), "--model", model, "--layer", "1"]
    assert "does not exist" in _one_line_error(capsys, ["steer", *common, "--prompt", "hi", "--feature", "99=+1"])
    assert "features.db" in _one_line_error(capsys, ["steer", *common, "--prompt", "hi", "--feature", "3=5x"])
    assert "not a run directory" in _one_line_error(capsys, ["steer", str(tmp_path / "nope"), "--prompt", "hi", "--feature", "3=1"])
    assert "context" in _one_line_error(capsys, ["steer", *common, "--prompt", "word " * 300, "--feature", "3=1", "--no-chat"])
    assert "unknown concept" in _one_line_error(capsys, ["concept", *common, "--concept", "nope"])
    assert "--negative" in _one_line_error(capsys, ["concept", *common, "--positive", str(tmp_path)])
    assert "--steering needs --concept" in _one_line_error(capsys, ["concept", *common, "--tokens", "cat", "--steering"])
    assert "features.db" in _one_line_error(capsys, ["concept", *common, "--concept", "food", "--steering"])


def test_cli_commands_run(capsys, tiny_run, tmp_path):
    run, model = tiny_run
    common = [str(run), "--model", model, "--layer", "1"]
    assert main(["steer", *common, "--prompt", "hi", "--feature", "3=+20", "--feature", "4=*2", "--max-new-tokens", "3"]) == 0
    out = capsys.readouterr().out
    assert "unsteered" in out and "3=+20, 4=*2" in out and "at the generated positions" in out
    assert main(["steer", *common, "--prompt", "hi", "--feature", "3=+20", "--positions", "all", "--max-new-tokens", "2"]) == 0
    assert "at every position" in capsys.readouterr().out
    assert main(["attribute", *common, "--prompt", "The cat sat on the", "--target", "mat", "--versus", "floor", "--top", "3"]) == 0
    out = capsys.readouterr().out
    assert "by attribution" in out and "Pearson" in out
    (tmp_path / "spans.txt").write_text("the [[cat]] sat\n\na [[dog]] ran")
    assert main(["concept", *common, "--span", str(tmp_path / "spans.txt"), "--top", "2"]) == 0
    assert main(["concept", *common, "--concept", "animals", "--top", "2"]) == 0
    assert "held-out AUROC" in capsys.readouterr().out
    assert main(["concept", *common, "--tokens", "cat,dog", "--top", "2"]) == 0
    assert "feature" in capsys.readouterr().out


def test_concept_list_needs_no_run(capsys):
    assert main(["concept", "--list"]) == 0
    out = capsys.readouterr().out
    assert "paris" in out and "code_bugs" in out
    assert "give the run directory" in _one_line_error(capsys, ["concept", "--concept", "paris"])


def test_generation_settings_checked_before_the_model_loads(capsys, tmp_path):
    # the run does not exist: these errors must come first, from the arguments alone
    base = ["steer", str(tmp_path / "nope"), "--prompt", "hi", "--feature", "3=1"]
    assert "--max-new-tokens must be >= 1" in _one_line_error(capsys, base + ["--max-new-tokens", "0"])
    assert "--temperature must be >= 0" in _one_line_error(capsys, base + ["--temperature", "-1"])
