"""The training knobs a checkpoint records beside its configs, and resuming with them.

`sae_config` and `train_config` hold what the user set; some values that shape every
step are not in them: class defaults (TopK's lr scale, BatchTopK's threshold EMA),
defaults resolved from a formula (the AuxK width, matryoshka's prefix widths, the dead
window) or from the machine (`--train-dtype auto`). When a new version changes one of
them, a checkpoint written before must not quietly continue under the new value: the
resumed run would be neither the old run nor a new one. So every checkpoint records
them as `knobs`, and a resumed run continues with the checkpoint's own values (an
exact resume) and says which differ from this version's; a knob this version cannot
set is refused in one line that names it.

A checkpoint written before knobs were recorded resumes with the lr scales stored in
its optimiser state (torch saves each parameter group's `lr_scale`, and a group
without one trained at 1x, as the loop read it then) and this version's values of the
rest, and says so."""

from __future__ import annotations

from ..errors import ConfigError

LR_SCALES = "lr_scales"


def current_knobs(trainer) -> dict:
    """The knobs `trainer` (a train.loop.SAETrainer) trains with now."""
    from ..sae import ARCHITECTURES

    knobs = {LR_SCALES: [float(g.get("lr_scale", 1.0)) for g in trainer.optimizer.param_groups],
             "dtype": trainer.dtype, "dead_window": int(trainer.dead.window)}
    if "aux_k" in ARCHITECTURES[trainer.sae_cfg.architecture].uses:
        knobs["aux_k"] = trainer.sae_cfg.effective_aux_k
    return {**knobs, **trainer.sae.training_knobs()}


def resume_with_knobs(trainer, recorded: dict | None, where) -> list[str]:
    """Make a trainer that has just loaded a checkpoint train with the checkpoint's
    knobs; -> notes for the user (empty when nothing differs from this version's)."""
    now = current_knobs(trainer)
    if recorded is None:
        return [f"the checkpoint in {where} predates recorded training knobs: resumed with its own lr scales "
                f"{now[LR_SCALES]} and this version's other defaults"]
    # the optimiser's groups and the dead tracker were just loaded from the checkpoint:
    # this version's values are the SAE's own scales and the run's configured window
    now[LR_SCALES] = [float(g.get("lr_scale", 1.0)) for g in trainer.sae.param_groups()]
    now["dead_window"] = int(trainer.cfg.dead_window)
    unknown = sorted(set(recorded) - set(now))
    if unknown:
        raise ConfigError(f"the checkpoint in {where} was trained with knob(s) {unknown} that this version does not have: "
                          "finish it with the version that wrote it, or --force to start again")
    sae_knobs = set(trainer.sae.training_knobs())
    kept = []
    for name, value in recorded.items():
        if value == now[name]:
            continue
        if name == LR_SCALES and len(value) == len(trainer.optimizer.param_groups):
            for group, scale in zip(trainer.optimizer.param_groups, value):
                group["lr_scale"] = float(scale)
        elif name == "dtype" and value in ("float32", "bfloat16"):
            trainer.dtype = value
        elif name == "dead_window":
            trainer.dead.window = int(value)
        elif name in sae_knobs:
            trainer.sae.adopt_knobs({name: value})
        else:
            raise ConfigError(f"the checkpoint in {where} was trained with {name} {value} and this version would use "
                              f"{now[name]}, which it cannot set back: finish it with the version that wrote it, "
                              "or --force to start again")
        kept.append(f"{name} {value} (this version's default: {now[name]})")
    missing = sorted(set(now) - set(recorded))
    notes = [f"resumed with the checkpoint's own training knobs, not this version's defaults: {', '.join(kept)}"] if kept else []
    if missing:
        notes.append(f"the checkpoint in {where} records no {missing}: resumed with this version's {', '.join(f'{m} {now[m]}' for m in missing)}")
    return notes
