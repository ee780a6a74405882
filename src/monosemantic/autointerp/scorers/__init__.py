"""Scorers, all on held-out examples the explainer never saw: the paper's specificity
rubric (0-3), detection and fuzzing (balanced accuracy), simulation (correlation)."""

from .base import ScoreResult, balanced_accuracy, parse_rating, parse_yes_no
from .detection import DetectionScorer
from .fuzzing import FuzzingScorer
from .rubric import RubricScorer
from .simulation import SimulationScorer, parse_predictions

SCORERS = {"rubric": RubricScorer, "detection": DetectionScorer, "fuzzing": FuzzingScorer, "simulation": SimulationScorer}

__all__ = ["DetectionScorer", "FuzzingScorer", "RubricScorer", "SCORERS", "ScoreResult", "SimulationScorer",
           "balanced_accuracy", "parse_predictions", "parse_rating", "parse_yes_no"]
