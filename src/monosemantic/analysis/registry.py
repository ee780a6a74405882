"""Analysis name -> module. Each analysis is one module of this package exposing

    run(target, out_dir=None, **opts) -> dict     # target: a family or run directory
    add_arguments(parser)                         # optional: its `analyze NAME` flags

which writes TARGET/analysis/<name>/ (JSON + PNG, atomically) and returns a summary
(printed by `monosemantic analyze NAME`). Adding an analysis is one new module and
one line here. Modules keep heavy imports inside functions: the CLI imports them
to build its parser."""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from ..errors import ConfigError


@dataclass(frozen=True)
class Analysis:
    module: str
    help: str


ANALYSES: dict[str, Analysis] = {
    "geometry": Analysis("monosemantic.analysis.geometry",
                         "decoder-cosine neighbourhoods and one 2-D UMAP of all members' decoder directions"),
    "splitting": Analysis("monosemantic.analysis.splitting",
                          "feature splitting: match features across members, split trees, children counts"),
    "completeness": Analysis("monosemantic.analysis.completeness",
                             "completeness: which concepts get a feature, against frequency × alive features"),
}


def is_built(name: str) -> bool:
    return importlib.util.find_spec(ANALYSES[name].module) is not None


def module(name: str) -> ModuleType:
    if name not in ANALYSES:
        raise ConfigError(f"unknown analysis {name!r}: choose one of {', '.join(ANALYSES)}")
    if not is_built(name):
        raise ConfigError(f"`analyze {name}` is not built yet in this version (issue 16)")
    return importlib.import_module(ANALYSES[name].module)


def output_dir(target: str | Path, name: str) -> Path:
    """TARGET/analysis/<name>: where an analysis of a family or run writes."""
    return Path(target) / "analysis" / name


def run_analysis(name: str, target: str | Path, out_dir: str | Path | None = None, **opts) -> dict:
    return module(name).run(target, out_dir, **opts)
