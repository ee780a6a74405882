"""Automated interpretability: explain features from their top and quantile-sampled
examples (an LLM, or the model-free token baseline), score the explanations on
held-out examples (specificity rubric, detection, fuzzing, simulation), and compare
SAE features with the MLP neurons of the same layer."""

from .examples import ExampleSplit, Sample, render, render_sample, split_examples
from .explainers import EXPLAINERS, Explanation, LLMExplainer, TokenExplainer, parse_explanation
from .neurons import Comparison, bootstrap_ci, compare_neurons
from .run import LABEL_EXPLAINER, ExplainResult, explain_run, label_features, select_features

__all__ = [
    "Comparison", "EXPLAINERS", "ExampleSplit", "ExplainResult", "Explanation", "LLMExplainer", "Sample", "TokenExplainer",
    "LABEL_EXPLAINER", "bootstrap_ci", "compare_neurons", "explain_run", "label_features", "parse_explanation", "render", "render_sample", "select_features",
    "split_examples",
]
