"""A small real store for run-level tests: four short English texts harvested from
the tiny Llama of conftest.py."""

from __future__ import annotations

from pathlib import Path

from monosemantic.activations.run import harvest_run


def harvest_text_store(run: Path, inputs: Path, lm, model_dir: Path, layer: int = 1) -> None:
    """Write the texts into `inputs` and harvest 1,200 tokens of them into RUN at `layer`."""
    inputs.mkdir(parents=True, exist_ok=True)
    for i, word in enumerate(["giraffe", "pelican", "octopus", "lantern"]):
        (inputs / f"{word}.txt").write_text(f"The {word} number {i} walks to the market and buys bread. " * 20)
    harvest_run(run, model=str(model_dir), lm=lm, layer=layer, n_tokens=1200, ctx_len=32, inputs=[str(inputs)], progress=False)
