"""Sections of scripts/benchmark.py over a shared harness (timing, child processes, options)."""
