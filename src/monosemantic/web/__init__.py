"""The web feature browser: `monosemantic serve RUN` (docs/web.md)."""

from .app import create_app

__all__ = ["create_app"]
