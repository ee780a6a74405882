"""A 2-rank harvest killed half way resumes to the store one process writes; a run
directory the ranks do not share is refused before the corpus is built; more ranks
than shards harvest the same store and say which ranks idle."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from distributed_helpers import cli, env, kill_rank_once_ready, ranks_by_hand

# 4,000 contexts of 16 tokens: 16 shards of 256, so a kill after the first lands half way
FLAGS = ["--tokens", 60000, "--ctx-len", 16, "--dtype", "float32"]


@pytest.fixture(scope="module")
def text(tmp_path_factory) -> Path:
    """Real text: ~0.5 MB of Python's own standard library, enough for 60k tokens."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    names = ("argparse.py", "dataclasses.py", "textwrap.py", "typing.py", "inspect.py", "subprocess.py")
    out = tmp_path_factory.mktemp("text") / "stdlib.txt"
    out.write_text("\n\n".join((stdlib / name).read_text() for name in names))
    return out


def _command(run: Path, model: Path, text: Path, *extra) -> list[str]:
    return [sys.executable, "-m", "monosemantic", "harvest", str(run), "--model", str(model), "--inputs", str(text),
            *map(str, FLAGS), *map(str, extra)]


def _same_store(a: Path, b: Path) -> None:
    files = sorted(p.name for p in a.glob("*.npy"))
    assert files and files == sorted(p.name for p in b.glob("*.npy"))
    for name in files:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    info = [cli("store", "info", d.parent).stdout for d in (a, b)]
    assert info[0] and info[0] == info[1]


@pytest.mark.slow
def test_a_rank_killed_mid_harvest_is_named_and_the_rerun_writes_the_one_process_store(tmp_path, tiny_model_dirs, text):
    model = tiny_model_dirs["llama"]
    run = tmp_path / "two"
    returncode, stderr = kill_rank_once_ready(_command(run, model, text, "--nproc", 2), run / "activations" / "shard-00000.json")
    assert returncode == 1
    assert stderr.strip().splitlines()[-1] == (
        "monosemantic: error: rank 1 of 2 failed (killed by SIGKILL; its own message, if any, is above) and the job "
        "was stopped: run the same command again to continue from the shards already written")
    written = sorted(p.name for p in (run / "activations").glob("shard-*.json"))
    assert not (run / "activations" / "manifest.json").exists() and 0 < len(written) < 16, written

    again = subprocess.run(_command(run, model, text, "--nproc", 2), env=env(), capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    one = subprocess.run(_command(tmp_path / "one", model, text), env=env(), capture_output=True, text=True, timeout=600)
    assert one.returncode == 0, one.stderr[-3000:]
    _same_store(tmp_path / "one" / "activations", run / "activations")


@pytest.mark.slow
def test_a_harvest_into_a_directory_the_ranks_do_not_share_is_refused_before_the_corpus(tmp_path, tiny_model_dirs, text):
    runs = [tmp_path / "node0" / "run", tmp_path / "node1" / "run"]
    base = ["--model", tiny_model_dirs["llama"], "--inputs", text, *FLAGS]
    results = ranks_by_hand([["harvest", run, *base] for run in runs], timeout=300)
    assert [r.returncode for r in results] == [1, 1], [r.stderr[-1500:] for r in results]
    for r in results:
        assert "on a shared filesystem" in r.stderr.strip().splitlines()[-1]
    for run in runs:
        assert sorted(p.name for p in run.iterdir()) == [], sorted(p.name for p in run.iterdir())


@pytest.mark.slow
def test_more_ranks_than_shards_harvest_the_same_store_and_say_who_idles(tmp_path, tiny_model_dirs, text):
    flags = ["--model", tiny_model_dirs["llama"], "--inputs", text, "--tokens", 2000, "--ctx-len", 16, "--dtype", "float32"]
    three = cli("harvest", tmp_path / "three", *flags, "--nproc", 3)
    assert three.returncode == 0, three.stderr[-3000:]
    assert "1 shard(s) of 256 contexts for 3 ranks: ranks 1-2 have nothing to harvest" in three.stderr
    assert cli("harvest", tmp_path / "one", *flags).returncode == 0
    _same_store(tmp_path / "one" / "activations", tmp_path / "three" / "activations")
