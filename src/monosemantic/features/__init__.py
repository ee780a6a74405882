"""The feature database: streaming summaries of every SAE feature (and optionally the
MLP neurons of the same layer) over held-out text, stored in `RUN/features.db`."""

from .build import BuildResult, FeatureDBConfig, build_feature_db
from .db import FeatureDB
from .schema import SCHEMA_VERSION, FeatureDBError, SchemaVersionError
from .streaming import FeatureStream, StreamConfig

__all__ = [
    "BuildResult", "FeatureDB", "FeatureDBConfig", "FeatureDBError", "FeatureStream", "SCHEMA_VERSION",
    "SchemaVersionError", "StreamConfig", "build_feature_db",
]
