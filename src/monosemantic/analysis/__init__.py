"""What a dictionary contains (the second half of "Scaling Monosemanticity"): a size
family of SAEs on one store (`family.py`, `family_build.py`) and one module per
analysis of it, found through `registry.py` (docs/analysis.md)."""
