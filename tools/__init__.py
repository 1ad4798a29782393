"""Build- and test-only tooling, outside the shipped scaleorfail package (run from the repository root)."""
