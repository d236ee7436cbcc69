"""Uncertainty propagation and global sensitivity (docs/uncertainty.md)."""
