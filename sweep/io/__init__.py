"""Input and output: result files (NetCDF, Zarr), streaming, tables (CSV), figures, atomic files,
signals, the memory budget and the progress bar.

Import the modules themselves (`sweep.io.output`, `sweep.io.tabular`, ...); this package imports
nothing, so the low-level ones (`files`, `memory`, `progress`) stay light for the physics below.
"""
