"""SAE evaluation, one module per metric family, each a pure function over tensors;
`run.evaluate_run` puts them together for a run directory and writes eval.json."""

from .density import DensityStats, density_stats
from .reconstruction import ReconstructionStats, reconstruction_stats
from .spliced import SplicedStats, spliced_stats

__all__ = ["DensityStats", "ReconstructionStats", "SplicedStats", "density_stats", "reconstruction_stats", "spliced_stats"]
