"""The README and docs/ cannot drift from the code: their code blocks run here.

The rule, for everyone writing docs (README.md and docs/*.md):

- A ```python block is executed. Blocks of one file run in order in one namespace,
  like a notebook, in a scratch directory holding a small real run at `runs/main`
  (embedded model, harvested store, tokens, SAE; features.db for docs/) so that
  "runs/main/..." paths work. README.md runs in the default suite, docs/*.md in
  `-m slow` (building features.db takes minutes on a loaded machine).
- A block that cannot run here (an API signature sketch, a server, the network,
  an LLM endpoint, a GPU) opts out with the info string ```python no-run
  (GitHub still highlights it as Python).
- In ```bash / ```sh / ```console blocks, every command that starts with
  `monosemantic` (after `$ `, environment assignments, `&&` or `|`) is parsed by the
  CLI's own argparse parser, not run: a flag or subcommand that does not exist fails.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import numpy as np
import pytest

from monosemantic.cli.main import build_parser

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md"] + sorted((ROOT / "docs").glob("*.md"))
FENCE = re.compile(r"^```([^\n`]*)\n(.*?)^```", re.S | re.M)
SHELL = {"bash", "sh", "shell", "console"}


def blocks(path: Path) -> list[tuple[str, str, int]]:
    """-> [(info string, code, first line number)] of the fenced blocks in `path`."""
    text = path.read_text()
    return [(m.group(1).strip(), m.group(2), text.count("\n", 0, m.start()) + 2) for m in FENCE.finditer(text)]


def python_blocks(path: Path) -> list[tuple[str, int]]:
    return [(code, line) for info, code, line in blocks(path) if info == "python"]


def cli_commands(path: Path) -> list[tuple[list[str], int]]:
    found = []
    for info, code, line in blocks(path):
        if info.split(" ")[0] not in SHELL:
            continue
        for offset, text in enumerate(code.splitlines()):
            text = text.strip().removeprefix("$ ")
            for part in re.split(r"&&|\|\||\|", text):
                try:
                    words = shlex.split(part, comments=True)
                except ValueError:
                    continue
                while words and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", words[0]):
                    words = words[1:]                          # RUN_DIR=... monosemantic ...
                if words and words[0] == "monosemantic":
                    found.append((words[1:], line + offset))
    return found


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


@pytest.mark.parametrize("doc", DOCS, ids=_rel)
def test_every_cli_line_parses(doc):
    parser = build_parser()
    for argv, line in cli_commands(doc):
        try:
            parser.parse_args(argv)
        except SystemExit as e:
            assert e.code == 0, f"{_rel(doc)}:{line}: `monosemantic {' '.join(argv)}` is not a valid command line"


def test_the_cli_line_check_can_fail(tmp_path):
    doc = tmp_path / "bad.md"
    doc.write_text("```bash\nmonosemantic train runs/x --no-such-flag  # a typo\n```\n")
    argv, _ = cli_commands(doc)[0]
    with pytest.raises(SystemExit) as e:
        build_parser().parse_args(argv)
    assert e.value.code != 0


def _tokens(lm, n_contexts=32, ctx_len=64):
    """Real text packed as the harvest packs it: BOS-like token, then a document."""
    from monosemantic.activations import Tokens

    text = (ROOT / "README.md").read_text() + (ROOT / "docs" / "architecture.md").read_text()
    ids = lm.tokenizer(text, add_special_tokens=False)["input_ids"]
    body = ctx_len - 1
    ids = (ids * (1 + n_contexts * body // len(ids)))[: n_contexts * body]
    contexts = np.concatenate([np.full((n_contexts, 1), lm.bos_id), np.array(ids).reshape(n_contexts, body)], 1).astype(np.int32)
    doc_ids = np.zeros_like(contexts)
    doc_pos = np.tile(np.arange(ctx_len, dtype=np.int32), (n_contexts, 1))
    return Tokens(contexts, doc_ids, doc_pos)


@pytest.fixture(scope="module")
def docs_dir(tmp_path_factory, embedded_lm):
    """A scratch directory with runs/main: a harvested store and a small SAE."""
    import torch

    from monosemantic.activations import HarvestConfig, harvest, open_store
    from monosemantic.interop import run_metadata
    from monosemantic.sae import SAEConfig, make_sae, save_sae

    root = tmp_path_factory.mktemp("docs")
    run = root / "runs" / "main"
    harvest(embedded_lm, _tokens(embedded_lm), run / "activations", HarvestConfig(layer=15, shard_contexts=16),
            extra_manifest={"model_spec": "embedded"}, progress=False)
    torch.manual_seed(0)
    store = open_store(run)
    sae = make_sae(SAEConfig("relu", d_in=store.d, n_latents=256, norm_scale=store.norm_scale))
    save_sae(sae, run / "sae", metadata=run_metadata(store, run))
    return root


def _run_python(doc: Path, directory: Path, monkeypatch):
    monkeypatch.chdir(directory)
    namespace: dict = {"__name__": "__docs__"}
    for code, line in python_blocks(doc):
        exec(compile("\n" * (line - 1) + code, str(doc), "exec"), namespace)   # tracebacks name the doc's line


def test_readme_python_blocks_run_as_written(docs_dir, monkeypatch):
    assert python_blocks(ROOT / "README.md"), "the README has no Python example"
    _run_python(ROOT / "README.md", docs_dir, monkeypatch)


@pytest.fixture(scope="module")
def docs_dir_with_features(tmp_path_factory):
    """runs/main built by the CLI as the main job builds it, at a small size."""
    from monosemantic.cli.main import main

    root = tmp_path_factory.mktemp("docs-full")
    run = str(root / "runs" / "main")
    for argv in (["harvest", run, "--tokens", "4000", "--ctx-len", "64"],
                 ["train", run, "--latents", "256", "--train-tokens", "20000", "--batch-size", "512"],
                 ["features", run, "--tokens", "2000"]):
        assert main(["--quiet", *argv]) == 0, argv
    return root


@pytest.mark.slow
@pytest.mark.parametrize("doc", [d for d in DOCS if d.name != "README.md" and python_blocks(d)], ids=_rel)
def test_docs_python_blocks_run_as_written(doc, docs_dir_with_features, monkeypatch):
    _run_python(doc, docs_dir_with_features, monkeypatch)
