"""Working with other libraries: SAEs trained elsewhere imported into a run
(`monosemantic import`), a run's SAE exported for them (`monosemantic export`), and
the metadata they read (hub id, hook, context size, BOS handling)."""

from .exporting import export_run
from .importing import import_sae
from .metadata import hub_id, run_metadata

__all__ = ["export_run", "hub_id", "import_sae", "run_metadata"]
