"""A static report of a run: `RUN/report/index.html` with training curves, density and
L0 histograms, the eval table and pages for the most and least dense features.
Plain files with relative links: it opens from disk, offline."""

from .build import build_report

__all__ = ["build_report"]
