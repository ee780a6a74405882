"""`RUN/config.json`: every setting of a run, one section per stage, written before
the stage starts and compared on re-runs so that a resumed stage never continues
with other settings than it began with."""

from __future__ import annotations

import json
from pathlib import Path

from . import atomic
from .errors import ConfigError

CONFIG = "config.json"


def read_config(run_dir: str | Path) -> dict:
    path = Path(run_dir) / CONFIG
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ConfigError(f"{path} is not valid JSON ({e}): fix or delete it") from e


def record_stage(run_dir: str | Path, stage: str, settings: dict, replace: bool = False) -> dict:
    """Store `settings` under `stage`; if the run already holds other settings for
    this stage, refuse unless `replace` (the caller then starts the stage afresh).
    Returns the settings now recorded."""
    config = read_config(run_dir)
    settings = json.loads(json.dumps(settings))  # the JSON form, so comparisons are exact
    previous = config.get(stage)
    if previous is not None and previous != settings and not replace:
        diffs = [f"{k}: {previous.get(k)!r} -> {settings.get(k)!r}" for k in sorted(set(previous) | set(settings)) if previous.get(k) != settings.get(k)]
        raise ConfigError(
            f"{run_dir} already has a {stage} stage with other settings ({'; '.join(diffs)}): "
            "use a new run directory, or --force to start this stage again"
        )
    config[stage] = settings
    atomic.write_json(Path(run_dir) / CONFIG, config)
    return settings


def shared_store(run_dir: str | Path) -> str | None:
    """The store another run lent this one: `train --activations` or `import --activations`."""
    config = read_config(run_dir)
    return (config.get("train") or {}).get("activations") or (config.get("import") or {}).get("activations")


def data_root(run_dir: str | Path) -> Path:
    """The run directory that holds the activations and tokens this run's SAE was
    trained on: the run itself, or the store's run when it was trained with
    `--activations OTHER_RUN[/activations]` or imported with it (several SAEs can
    share one store)."""
    run_dir = Path(run_dir)
    if (run_dir / "activations").is_dir():
        return run_dir
    shared = shared_store(run_dir)
    if not shared:
        return run_dir
    shared = Path(shared)
    if shared.suffix == ".npy":
        return run_dir
    return shared.parent if shared.name == "activations" else shared
