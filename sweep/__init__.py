"""sweep: vectorised, differentiable energy efficiency of LLM inference (tokens per joule).

    import sweep
    ds = sweep.run("grids/table1.toml")            # xarray.Dataset
    sweep.run(spec_dict, out="outputs/grid.nc")     # also write NetCDF
"""

import importlib
import os
import sys

from sweep._errors import SweepInputError

# 64-bit JAX. Set without importing JAX (seconds), so that `sweep` on the command line installs its
# signal handlers first; the public names below are imported on first use.
if "jax" in sys.modules:
    sys.modules["jax"].config.update("jax_enable_x64", True)
else:
    os.environ["JAX_ENABLE_X64"] = "1"

__version__ = "0.1.0"
__all__ = ["run", "evaluate", "Profile", "SweepInputError", "release_memory", "__version__"]
_LAZY = {"run": "sweep._api", "evaluate": "sweep._efficiency", "Profile": "sweep._profile",
         "release_memory": "sweep._memory"}


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'sweep' has no attribute {name!r}")
