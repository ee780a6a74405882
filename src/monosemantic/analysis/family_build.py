"""Training and tabulating a family (`monosemantic family`): SAEs of several sizes
on one store, each a normal run directory FAMILY/n<size> that lends the store
(`train --activations`), trained in one pass over the store (train.train_runs),
then evaluated (FVE, L0, loss recovered, dead fraction: evals/run.py) into the
paper's table for its 1M / 4M / 34M SAEs.

The sizes are given, or planned for a compute budget from a sweep's fitted laws
(the planner of `scaling plan`: scaling/plan.py, budgets a factor apart as in
`scaling family`). Rerunning resumes: finished members are skipped, interrupted
ones continue from their checkpoints, and a directory of member runs without
family.json (one member dir per size) is adopted with the settings each recorded."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from .. import atomic
from ..run import Run
from ..train.config import TrainConfig
from .family import FAMILY_FILE, FAMILY_FORMAT, FamilyError, member_dirs, open_family, read_family_file

TABLE_JSON = "family_table.json"
TABLE_MD = "family_table.md"


@dataclass
class MemberPlan:
    name: str
    sae_cfg: dict | None          # None: adopt what the member's config.json recorded
    train_cfg: TrainConfig | None


@dataclass
class MemberRow:
    name: str
    n_latents: int
    training_tokens: int | None
    fve: float | None
    l0: float | None
    loss_recovered: float | None      # None when the store's run has no model or tokens
    dead_fraction: float | None
    alive_latents: int | None
    dead_window_tokens: int | None    # a latent is dead if it never fired in this many held-out tokens
    eval_seconds: float | None


def member_name(n_latents: int) -> str:
    return f"n{n_latents}"


def planned_members(sweep: str | Path, top: float | None = None, factor: float = 4.0) -> tuple[list[MemberPlan], str]:
    """Three members for budgets `factor` apart ending at `top` (default: the sweep's
    largest), each the allocation `scaling plan` gives (features and tokens from the
    sweep's fitted frontier) with the sweep's other settings, and the sweep's store:
    what `scaling family` trains, as normal members of a family directory."""
    from dataclasses import replace

    from ..scaling.family import family_budgets
    from ..scaling.fit import fit_sweep
    from ..scaling.plan import plan
    from ..scaling.sweep import collect, read_sweep, train_config

    fit = fit_sweep(collect(sweep))
    spec = read_sweep(sweep)
    if not spec.runs:
        raise FamilyError(f"{sweep} has no runs to take the training settings from")
    plans = []
    for budget in family_budgets(fit, factor, top):
        p = plan(fit, budget, batch_size=spec.batch_size)
        run = replace(spec.runs[0], n_latents=p.n_latents, n_tokens=p.n_tokens)
        plans.append(MemberPlan(member_name(p.n_latents), run.sae_cfg(), train_config(spec, run)))
    return plans, str(spec.activations)


def plans_for_sizes(sizes: list[int], sae_cfg: dict, train_cfg: TrainConfig) -> list[MemberPlan]:
    """One member per size, sharing every other setting."""
    return [MemberPlan(member_name(n), {**sae_cfg, "n_latents": n}, train_cfg) for n in sorted(sizes)]


def _recorded_activations(family_dir: Path) -> str | None:
    data = read_family_file(family_dir)
    if data and data.get("activations"):
        return str(data["activations"])
    lent = {(Run(d).config.get("train") or {}).get("activations") for d in member_dirs(family_dir)} - {None}
    if len(lent) > 1:
        raise FamilyError(f"the member runs of {family_dir} lend different stores ({', '.join(sorted(lent))}): "
                          "a family is SAEs of one store")
    return lent.pop() if lent else None


def _recorded_plan(run_dir: Path) -> MemberPlan:
    train = Run(run_dir).config.get("train") or {}
    known = {f.name for f in fields(TrainConfig)}
    cfg = TrainConfig(**{k: v for k, v in (train.get("train") or {}).items() if k in known}) if train.get("train") else None
    return MemberPlan(run_dir.name, train.get("sae"), cfg)


def resolve_plans(family_dir: Path, plans: list[MemberPlan] | None) -> list[MemberPlan]:
    """The members to build: those given (refused if FAMILY already holds other
    members), else the ones FAMILY already records (family.json or member dirs)."""
    existing = member_dirs(family_dir) if family_dir.is_dir() else []
    if plans is None:
        if not existing:
            raise FamilyError(f"{family_dir} holds no family yet: give its sizes (--latents 2048,8192,32768) "
                              "or a sweep to plan them from (--sweep SWEEP)")
        return [_recorded_plan(d) for d in existing]
    names = {p.name for p in plans}
    if len(names) != len(plans):
        raise FamilyError(f"the family's sizes repeat ({', '.join(p.name for p in plans)}): give distinct sizes, or a "
                          "larger --factor for a sweep whose planner gives one size for several budgets")
    others = sorted(d.name for d in existing if d.name not in names)
    if others and read_family_file(family_dir) is not None:
        raise FamilyError(f"{family_dir} already holds a family with member(s) {', '.join(others)}: "
                          f"rerun `monosemantic family {family_dir}` without sizes, or use a new directory")
    return plans


def build_family(family_dir: str | Path, plans: list[MemberPlan] | None = None, activations: str | Path | None = None,
                 eval_tokens: int = 50_000, eval_contexts: int = 48, progress: bool = True) -> list[MemberRow]:
    """Train (or resume, or skip) every member, evaluate each that has no eval.json
    of its SAE, and write FAMILY/family.json, family_table.json and family_table.md."""
    from ..train.run import train_runs

    family_dir = Path(family_dir)
    plans = resolve_plans(family_dir, plans)
    if len(plans) < 2:
        raise FamilyError(f"a family needs at least two sizes, got {[p.name for p in plans]}: give --latents 2048,8192,32768")
    recorded = _recorded_activations(family_dir) if family_dir.is_dir() else None
    store = str(Path(activations).resolve()) if activations else recorded
    if store is None:
        raise FamilyError(f"{family_dir}: say which store the family is trained on (--activations STORE_RUN)")
    if recorded is not None and Path(recorded).resolve() != Path(store).resolve():
        raise FamilyError(f"{family_dir} is a family of the store {recorded}, not {store}: use a new family directory")
    family_dir.mkdir(parents=True, exist_ok=True)
    atomic.write_json(family_dir / FAMILY_FILE, {"format": FAMILY_FORMAT, "activations": store,
                                                 "members": [{"name": p.name} for p in plans]})
    todo = [p for p in plans if not Run(family_dir / p.name).has_sae]
    missing = [p.name for p in todo if p.sae_cfg is None or p.train_cfg is None]
    if missing:
        raise FamilyError(f"{family_dir}: member(s) {', '.join(missing)} record no training settings: give the sizes "
                          "(--latents ...) to train them")
    start = time.perf_counter()
    if todo:
        train_runs([(family_dir / p.name, p.sae_cfg, p.train_cfg) for p in todo], activations=store, resume=True,
                   progress=progress)
    train_seconds = time.perf_counter() - start if todo else None
    family = open_family(family_dir)
    rows = evaluate_members(family.members, eval_tokens, eval_contexts, progress)
    write_table(family_dir, rows, train_seconds)
    return rows


def evaluate_members(members: list[Run], eval_tokens: int, eval_contexts: int, progress: bool) -> list[MemberRow]:
    """Each member's row, evaluating (together: evals.run.evaluate_runs shares the
    model's baseline forwards) the members with no eval.json of their current SAE."""
    from ..evals.run import evaluate_runs

    def stale(run: Run) -> bool:
        path = run.dir / "eval.json"
        return (run.eval_result().get("n_latents") != int(run.sae_cfg["d_sae"]) or not path.is_file()
                or path.stat().st_mtime < (run.sae_dir / "sae_weights.safetensors").stat().st_mtime)

    todo = [run for run in members if stale(run)]   # none yet, or of an SAE since retrained
    fresh = dict(zip([r.dir for r in todo], evaluate_runs(todo, n_tokens=eval_tokens, n_contexts=eval_contexts, progress=progress)))
    return [member_row(run, fresh.get(run.dir) or run.eval_result()) for run in members]


def member_row(run: Run, ev: dict) -> MemberRow:
    n = int(run.sae_cfg["d_sae"])
    dead = ev.get("dead_fraction")
    return MemberRow(run.dir.name, n, (run.sae_cfg.get("metadata") or {}).get("training_tokens"), ev.get("fve"), ev.get("l0"),
                     ev.get("loss_recovered"), dead, None if dead is None else round(n * (1 - dead)),
                     ev.get("dead_window_tokens"), ev.get("eval_seconds"))


def format_markdown(rows: list[MemberRow]) -> str:
    def pct(v):
        return "n/a" if v is None else f"{v:.2%}"

    def num(v, fmt):
        return "n/a" if v is None else format(v, fmt)

    lines = ["| member | latents | training tokens | FVE | L0 | loss recovered | dead | alive |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r.name} | {r.n_latents:,} | {num(r.training_tokens, ',')} | {num(r.fve, '.4f')} | {num(r.l0, '.2f')} "
                     f"| {pct(r.loss_recovered)} | {pct(r.dead_fraction)} | {num(r.alive_latents, ',')} |")
    window = {r.dead_window_tokens for r in rows} - {None}
    if window:
        lines.append("")
        lines.append(f"Dead: never fired on {', '.join(f'{w:,}' for w in sorted(window))} held-out tokens.")
    return "\n".join(lines) + "\n"


def write_table(family_dir: Path, rows: list[MemberRow], train_seconds: float | None) -> None:
    atomic.write_json(family_dir / TABLE_JSON, {"members": [asdict(r) for r in rows], "train_seconds": train_seconds})
    atomic.write_bytes(family_dir / TABLE_MD, format_markdown(rows).encode())
