"""Scaling laws: FLOP accounting, sweeps, fitted power laws, a planner and SAE families."""
