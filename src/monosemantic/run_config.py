"""`RUN/config.json`: every setting of a run, one section per stage, written before
the stage starts and compared on re-runs so that a resumed stage never continues
with other settings than it began with."""

from __future__ import annotations

import json
from pathlib import Path

from . import atomic
from .errors import ConfigError

CONFIG = "config.json"


def check_run_dir(run_dir: str | Path) -> Path:
    """`run_dir` as a Path; refuses a path that exists but is not a directory."""
    run_dir = Path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise ConfigError(f"{run_dir} is a file, not a run directory: pass a directory (it is created if missing)")
    return run_dir


def read_config(run_dir: str | Path) -> dict:
    path = check_run_dir(run_dir) / CONFIG
    if not path.is_file():
        return {}
    try:
        return atomic.read_json(path)
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
    if previous == settings:
        return settings  # unchanged: a finished run can be re-checked where it cannot be written
    config[stage] = settings
    atomic.write_json(Path(run_dir) / CONFIG, config)
    return settings
