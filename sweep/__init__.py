"""sweep: vectorised, differentiable energy efficiency of LLM inference (tokens per joule).

    import sweep
    ds = sweep.run("grids/table1.toml")            # xarray.Dataset
    sweep.run(spec_dict, out="outputs/grid.nc")     # also write NetCDF

The public API is what this module lists in `__all__`; everything else is internal. The science
is in docs/models.md.

Precision: sweep computes in float64 and needs JAX's 64-bit mode. Importing sweep turns it on for
the process (`jax_enable_x64`; through the `JAX_ENABLE_X64` environment variable when JAX is not
imported yet, so the command line can install its signal handlers before the slow JAX import).
This is a process-wide JAX setting: other JAX code in the same process then also defaults to
64-bit types. `sweep.run` checks that the mode is still on and records it in the output's
`precision` attribute.
"""

import importlib
import os
import sys

from sweep.errors import SweepInputError, SweepWarning
from sweep.version import __version__

if "jax" in sys.modules:
    sys.modules["jax"].config.update("jax_enable_x64", True)
else:
    os.environ["JAX_ENABLE_X64"] = "1"

# public name -> module that defines it (imported on first use)
_LAZY = {
    "run": "sweep.api",
    "optimize": "sweep.optimizer",
    "refine": "sweep.optimizer",
    "evaluate": "sweep.physics.instance",
    "Profile": "sweep.physics.profile",
    "profile_for": "sweep.catalogs.setups",
    "dense_family": "sweep.physics.architecture",
    "gpu_catalog": "sweep.catalogs",
    "model_catalog": "sweep.catalogs",
    "profile_catalog": "sweep.catalogs",
    "workload_names": "sweep.catalogs",
    "import_model": "sweep.catalogs",
    "release_memory": "sweep.grid.buffers",
    "calibrate": "sweep.calibration.workflow",
    "predict": "sweep.calibration.workflow",
    "compare": "sweep.uncertainty.compare",
    "sensitivity": "sweep.api",
}
__all__ = [*_LAZY, "SweepInputError", "SweepWarning", "__version__"]


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'sweep' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
