"""`harvest --nproc 2` writes the store one process writes: the same shard files
byte for byte, the same manifest (but for its wall-time sum), the same `store info`."""

from __future__ import annotations

import json
import sysconfig
from pathlib import Path

import pytest

from distributed_helpers import cli, ranks_by_hand

# 600 contexts of 16 tokens: shards of 256 contexts -> 3 shards, so both ranks work
# and rank 0 does two (0 and 2).
FLAGS = ["--tokens", 9000, "--ctx-len", 16, "--dtype", "float32"]


@pytest.fixture(scope="module")
def text(tmp_path_factory) -> Path:
    """Real text: a few modules of Python's own standard library."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    out = tmp_path_factory.mktemp("text") / "stdlib.txt"
    out.write_text("\n\n".join((stdlib / name).read_text() for name in ("argparse.py", "dataclasses.py", "textwrap.py")))
    return out


def _harvest(run: Path, model: Path, text: Path, *extra):
    done = cli("harvest", run, "--model", model, "--inputs", text, *FLAGS, *extra)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


@pytest.mark.slow
def test_two_ranks_write_the_store_one_process_writes(tmp_path, tiny_model_dirs, text):
    model = tiny_model_dirs["llama"]
    _harvest(tmp_path / "one", model, text)
    _harvest(tmp_path / "two", model, text, "--nproc", 2)
    one, two = tmp_path / "one" / "activations", tmp_path / "two" / "activations"
    files = sorted(p.name for p in one.iterdir())
    assert files == sorted(p.name for p in two.iterdir())
    assert len([f for f in files if f.endswith(".rows.npy")]) == 3
    for name in files:
        if name.endswith(".npy"):
            assert (one / name).read_bytes() == (two / name).read_bytes(), name
    m1, m2 = (json.loads((d / "manifest.json").read_text()) for d in (one, two))
    m1.pop("harvest_seconds"), m2.pop("harvest_seconds")
    assert m1 == m2
    info1, info2 = cli("store", "info", tmp_path / "one"), cli("store", "info", tmp_path / "two")
    assert info1.returncode == 0 and info1.stdout == info2.stdout

    # Resumable per rank: a lost shard is redone, the others are kept.
    for suffix in (".npy", ".rows.npy", ".json"):
        (two / f"shard-00001{suffix}").unlink()
    (two / "manifest.json").unlink()
    kept = (two / "shard-00000.json").stat().st_mtime_ns
    _harvest(tmp_path / "two", model, text, "--nproc", 2)
    assert (two / "shard-00001.npy").read_bytes() == (one / "shard-00001.npy").read_bytes()
    assert (two / "shard-00000.json").stat().st_mtime_ns == kept


@pytest.mark.slow
def test_ranks_with_other_settings_are_refused_before_any_work(tmp_path, tiny_model_dirs, text):
    model = tiny_model_dirs["llama"]
    run = tmp_path / "run"
    base = ["harvest", run, "--model", model, "--inputs", text, *map(str, FLAGS)]
    other = list(base)
    other[other.index("--ctx-len") + 1] = "32"
    results = ranks_by_hand([base, other])
    assert [r.returncode for r in results] == [1, 1], [r.stderr[-1500:] for r in results]
    assert "rank 1 disagrees with rank 0 on the harvest settings" in results[0].stderr
    assert not (run / "activations").exists() and not (run / "tokens").exists()
