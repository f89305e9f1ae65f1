"""Watch published pages for quiet edits: every version kept, word-level diffs, removals and
restores told apart."""

__version__ = "0.1.0"
