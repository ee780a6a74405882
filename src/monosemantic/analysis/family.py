"""Reading a family: SAEs of several sizes trained on one activation store, each
member a normal run directory (a `Run`) inside the family directory.

FAMILY/family.json names the members (written by `monosemantic family`); a
directory without it whose sub-directories are runs that lend one store (the layout
`monosemantic family` adopts) is read the same way. A member run's parent is its
family, so an analysis given a member finds the others.

The refusals (issue 16, "Bad input"): members of different stores or models are
refused with one line naming the mismatch; a family of one member, or a directory
that is no family, says which command to run first."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .. import atomic
from ..errors import ConfigError
from ..run import Run

FAMILY_FILE = "family.json"
FAMILY_FORMAT = "monosemantic-family/1"
FIRST = "run `monosemantic family FAMILY --activations STORE_RUN --latents 2048,8192,32768` first"


class FamilyError(ConfigError):
    """A directory is not a usable family (see the module docstring)."""


@dataclass(frozen=True)
class Family:
    dir: Path
    members: tuple[Run, ...]          # sorted by dictionary size, smallest first

    @property
    def sizes(self) -> list[int]:
        return [member_size(m) for m in self.members]

    @property
    def names(self) -> list[str]:
        return [m.dir.name for m in self.members]

    @property
    def analysis_dir(self) -> Path:
        return self.dir / "analysis"


def member_size(run: Run) -> int:
    """The member's dictionary size, from its SAE or, before training, its settings."""
    n = run.sae_cfg.get("d_sae") or ((run.config.get("train") or {}).get("sae") or {}).get("n_latents")
    if not n:
        raise FamilyError(f"{run.dir} records no dictionary size (no sae/cfg.json, no train stage in config.json): {FIRST}")
    return int(n)


def is_member_dir(path: Path) -> bool:
    """A run directory with a train stage (trained or in training)."""
    return path.is_dir() and (bool((Run(path).config.get("train"))) or Run(path).has_sae)


def read_family_file(family_dir: Path) -> dict | None:
    path = family_dir / FAMILY_FILE
    if not path.is_file():
        return None
    try:
        data = atomic.read_json(path)
    except ValueError as e:
        raise FamilyError(f"{path} is not valid JSON ({e}): delete it and {FIRST}") from e
    if isinstance(data, list):   # `scaling family`'s SWEEP/family/family.json: the member rows themselves
        data = {"members": data}
    if not isinstance(data, dict) or not isinstance(data.get("members"), list):
        raise FamilyError(f"{path} is not a family file (no member list): delete it and {FIRST}")
    return data


def member_dirs(family_dir: Path) -> list[Path]:
    """The member directories of FAMILY: those family.json names, else every
    sub-directory that is a run with a train stage."""
    data = read_family_file(family_dir)
    if data is not None:
        return [family_dir / str(m["name"]) for m in data["members"]]
    return sorted(p for p in family_dir.iterdir() if p.name != "analysis" and is_member_dir(p)) if family_dir.is_dir() else []


def family_root(path: str | Path) -> Path:
    """The family directory of `path`: itself, or its parent when `path` is a member."""
    path = Path(path)
    if not path.exists():
        raise FamilyError(f"{path} does not exist: {FIRST}")
    if not path.is_dir():
        raise FamilyError(f"{path} is a file, not a family directory: {FIRST}")
    if (path / FAMILY_FILE).is_file() or not is_member_dir(path):
        return path
    if member_family(path) is None:
        raise FamilyError(f"{path} is one run with its own store, not a family member: give the family directory, or {FIRST}")
    return path.parent


def member_family(run_dir: str | Path) -> Path | None:
    """The family directory a run belongs to, or None for a plain run. A run with its
    own store (the main job's) is no member unless its parent has family.json: its
    parent is just where runs live, and the runs beside it are no family of it."""
    run_dir = Path(run_dir)
    if not is_member_dir(run_dir):
        return None
    if (run_dir.parent / FAMILY_FILE).is_file() or not _owns_its_store(run_dir):
        return run_dir.parent
    return None


def _owns_its_store(path: Path) -> bool:
    run = Run(path)
    return _has_store(run) and path.resolve() in run.store_dir.resolve().parents


def _has_store(run: Run) -> bool:
    return run.store_dir.exists()


def _store_identity(run: Run) -> dict:
    m, store = run.manifest, run.store_dir
    return {"store": str(store.resolve()) if _has_store(run) else None, "model": m.get("model") or run.model_name, "layer": run.layer,
            "tokens": m.get("tokens_digest"), "d_in": run.sae_cfg.get("d_in") or m.get("d")}


def check_same_store(members: list[Run]) -> None:
    """Refuse members that do not share one store, model and layer, in one line."""
    first = _store_identity(members[0])
    for run in members[1:]:
        other = _store_identity(run)
        for key in ("model", "layer", "d_in", "tokens", "store"):
            if first[key] != other[key] and first[key] is not None and other[key] is not None:
                what = {"model": "models", "layer": "layers", "d_in": "input widths", "tokens": "token sets",
                        "store": "activation stores"}[key]
                raise FamilyError(f"family members of different {what}: {members[0].dir.name} has {first[key]}, "
                                  f"{run.dir.name} has {other[key]} (a family is SAEs of one store: train them with "
                                  "`monosemantic family` on one --activations)")


def open_family(path: str | Path, trained: bool = True) -> Family:
    """The family at `path` (a family directory or one of its members), members
    sorted by size. With `trained`, every member must have its SAE."""
    root = family_root(path)
    dirs = member_dirs(root)
    if len(dirs) < 2:
        found = f"only {dirs[0].name}" if dirs else "no member"
        raise FamilyError(f"{root} is not a family ({found}; an analysis across sizes needs at least two SAEs of one store): {FIRST}")
    missing = [d.name for d in dirs if not d.is_dir()]
    if missing:
        raise FamilyError(f"{root}: member(s) {', '.join(missing)} named in {FAMILY_FILE} do not exist: {FIRST}")
    members = sorted((Run(d) for d in dirs), key=member_size)
    if trained:
        untrained = [m.dir.name for m in members if not m.has_sae]
        if untrained:
            raise FamilyError(f"{root}: member(s) {', '.join(untrained)} have no trained SAE yet: "
                              f"run `monosemantic family {root}` to finish training")
    check_same_store(members)
    return Family(root, tuple(members))


def served_run(path: str | Path) -> Path:
    """What `serve PATH` serves: PATH, or, for a family directory, its largest member
    (whose pages link the family's map and the other members' features)."""
    path = Path(path)
    if not (path / FAMILY_FILE).is_file():
        return path
    return open_family(path, trained=False).members[-1].dir
