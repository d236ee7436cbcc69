"""Calibration of the physical first-principles model to measured deployments (docs/calibration.md)."""
