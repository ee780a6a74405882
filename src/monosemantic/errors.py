"""User-facing errors. The CLI prints these as one line and exits non-zero;
anything else is an internal bug and stays a traceback."""


class MonosemanticError(Exception):
    """A problem the user can fix; the message says what to do."""


class ModelError(MonosemanticError):
    """The model cannot be loaded or the layer does not exist."""


class CorpusError(MonosemanticError):
    """The corpus is empty, unreadable or not text."""


class StoreError(MonosemanticError):
    """An activation store is missing, incomplete or does not match."""


class ConfigError(MonosemanticError):
    """A setting is out of range or inconsistent."""


class CheckpointError(MonosemanticError):
    """A checkpoint is missing or corrupt."""


class TrainingDiverged(MonosemanticError):
    """Loss became NaN or infinite."""


class DistributedError(MonosemanticError):
    """Ranks of a distributed job disagree, or one of them failed."""
