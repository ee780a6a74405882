"""The `monosemantic` command: one thin file per command group, over the library."""
