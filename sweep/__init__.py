"""sweep: vectorised, differentiable energy efficiency of LLM inference (tokens per joule).

    import sweep
    ds = sweep.run("grids/table1.toml")            # xarray.Dataset
    sweep.run(spec_dict, out="outputs/grid.nc")     # also write NetCDF
"""

import jax

jax.config.update("jax_enable_x64", True)

from sweep._api import run  # noqa: E402
from sweep._efficiency import evaluate  # noqa: E402
from sweep._errors import SweepInputError  # noqa: E402
from sweep._memory import release_memory  # noqa: E402
from sweep._profile import Profile  # noqa: E402

__version__ = "0.1.0"
__all__ = ["run", "evaluate", "Profile", "SweepInputError", "release_memory", "__version__"]
