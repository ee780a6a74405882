"""Automated interpretability: explain features from their top and quantile-sampled
examples (an LLM, or the model-free token baseline), score the explanations on
held-out examples (specificity rubric, detection, fuzzing, simulation); score any
unit (SAE feature, MLP neuron, residual / PCA / random direction) with the offline
scorers that need no LLM (N2G, example embeddings, ablation sparsity, k-sparse
probing: interpret.py); compare features with the other units (compare.py)."""

from .examples import ExampleSplit, Sample, render, render_sample, split_examples
from .explainers import EXPLAINERS, Explanation, LLMExplainer, TokenExplainer, parse_explanation
from .compare import Comparison, bootstrap_ci, compare_units
from .interpret import InterpretConfig, InterpretResult, interpret_run, parse_units
from .run import LABEL_EXPLAINER, ExplainResult, explain_run, label_features, select_features

__all__ = [
    "Comparison", "EXPLAINERS", "ExampleSplit", "ExplainResult", "Explanation", "LLMExplainer", "Sample", "TokenExplainer",
    "InterpretConfig", "InterpretResult", "LABEL_EXPLAINER", "bootstrap_ci", "compare_units", "interpret_run", "parse_units",
    "explain_run", "label_features", "parse_explanation", "render", "render_sample", "select_features",
    "split_examples",
]
