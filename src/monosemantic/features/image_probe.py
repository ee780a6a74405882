"""The paper's multimodal check: do features found from text alone fire on images of
the same concept? (Templeton et al. 2024: the Golden Gate Bridge feature on a photo of
the bridge.) The protocol (docs/multimodal.md):

1. Find the concept's features from text only: a shipped concept set's positive vs
   negative texts (steering/concepts.py, the `concept` command), or ids given.
2. Run every image of a folder showing the concept and of a folder of other images
   (the user provides both; nothing ships) through the VLM with no text, and take each
   feature's maximum over the image tokens.
3. Per feature: mean of that maximum on concept vs other images, the fraction of
   images where it fires, and the AUROC of telling the two sets apart by it (0.5 =
   chance); also for the sum of the concept features, and as a control the mean AUROC
   of as many random features that fire on some image (a feature that fires on
   "images in general" scores 0.5, not high)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..auroc import auroc
from ..errors import ConfigError
from ..models.images import image_files, read_image
from .image_prompt import image_features


@dataclass
class ProbeRow:
    feature: int
    concept_mean: float   # mean over concept images of the max over image tokens
    other_mean: float
    concept_fires: float  # fraction of concept images with max > 0
    other_fires: float
    auroc: float          # concept vs other images by the feature's max


@dataclass
class ProbeResult:
    rows: list[ProbeRow]
    auroc_sum: float        # the features' summed maxima as one score
    control_auroc: float    # mean AUROC of random features that fire on some image (nan if none)
    n_concept: int
    n_other: int


def concept_feature_ids(lm, sae, layer: int, concept: str, top: int = 5) -> list[int]:
    """Step 1: the concept's features from its texts, as `concept --concept NAME` ranks them."""
    from ..steering.concepts import find_concept_features, load_concept

    return [r.feature for r in find_concept_features(lm, sae, layer, load_concept(concept), top=top)]


def image_maxima(lm, sae, layer: int, folder: str | Path) -> torch.Tensor:
    """[n_images, n_latents]: each feature's max over each image's tokens."""
    rows = [image_features(lm, sae, layer, read_image(p)).acts.max(0).values for p in image_files(folder)]
    return torch.stack(rows)


def probe_images(lm, sae, layer: int, features: list[int], concept_dir, other_dir, n_control: int = 20,
                 seed: int = 0) -> ProbeResult:
    n = int(sae.W_dec.shape[0])
    bad = [f for f in features if not 0 <= f < n]
    if not features or bad:
        raise ConfigError(f"features {bad or '(none)'}: give ids in 0..{n - 1}")
    concept, other = image_maxima(lm, sae, layer, concept_dir).numpy(), image_maxima(lm, sae, layer, other_dir).numpy()
    rows = [ProbeRow(f, float(concept[:, f].mean()), float(other[:, f].mean()), float((concept[:, f] > 0).mean()),
                     float((other[:, f] > 0).mean()), auroc(concept[:, f], other[:, f])) for f in features]
    live = np.nonzero(np.concatenate([concept, other]).max(0) > 0)[0]
    live = np.setdiff1d(live, features)
    control = np.random.default_rng(seed).choice(live, min(n_control, len(live)), replace=False) if len(live) else []
    control_auroc = float(np.mean([auroc(concept[:, f], other[:, f]) for f in control])) if len(control) else float("nan")
    return ProbeResult(rows, auroc(concept[:, features].sum(1), other[:, features].sum(1)), control_auroc,
                       len(concept), len(other))
