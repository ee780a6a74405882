"""Steering, attribution/ablation and concept search on a trained SAE (DESIGN.md,
"Steering, as in the paper"). See docs/steering.md."""

from .attribution import AttributionResult, FeatureEffect, Target, attribute, attribution_scores, ablation_scores
from .concepts import (Concept, RankedFeature, concept_names, find_concept_features, load_concept,
                       rank_contrastive, rank_logit_effect, rank_span)
from .generate import Completions, steered_completions
from .interventions import Intervention, parse_intervention, steer
from .run import SteeringRun, open_run

__all__ = [
    "Intervention", "parse_intervention", "steer", "Completions", "steered_completions",
    "Target", "FeatureEffect", "AttributionResult", "attribute", "attribution_scores", "ablation_scores",
    "Concept", "RankedFeature", "concept_names", "load_concept", "find_concept_features",
    "rank_contrastive", "rank_span", "rank_logit_effect", "SteeringRun", "open_run",
]
