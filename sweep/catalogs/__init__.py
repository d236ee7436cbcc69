"""The catalogs as the public API shows them: GPUs, LLM architectures, calibrated profiles, workloads.

Every number carries its provenance (`Value`: value, source, quality, uncertainty). The GPU and
model catalogs are the built-in files plus the user catalog (`$SWEEP_HOME/{gpus,models}.toml`).
"""

from __future__ import annotations

from pathlib import Path

from sweep.catalogs.gpus import GpuCatalog, load_gpu_catalog
from sweep.catalogs.llms import (
    ModelCatalog,
    import_hf_config,
    load_model_catalog,
    model_table,
)
from sweep.catalogs.profiles import CalibratedProfile, load_catalog
from sweep.catalogs.user import add_model, check_model_name, home, usable_user_catalog
from sweep.fleet.workload import available_workloads


def gpu_catalog() -> GpuCatalog:
    """The GPU catalog: built-in SKUs and the user's own.

    Returns a `GpuCatalog`; `.names()` lists the SKUs, `.get(name)` (case-insensitive, aliases
    accepted) returns an entry whose `.specs` maps each spec to its `Value`.

    >>> sweep.gpu_catalog().get("H100").specs["hbm_bandwidth_bytes_per_s"].value
    3350000000000.0
    """
    return load_gpu_catalog(usable_user_catalog("gpus")[0])


def model_catalog() -> ModelCatalog:
    """The LLM architecture catalog: built-in models and the user's imported ones.

    Returns a `ModelCatalog`; `.names()` lists the model ids, `.get(name)` returns an entry whose
    `.arch` maps each architecture field to its `Value`.

    >>> sweep.model_catalog().get("llama-3.1-70b").value("n_layers")
    80.0
    """
    return load_model_catalog(usable_user_catalog("models")[0])


def profile_catalog() -> dict[tuple[str, str], CalibratedProfile]:
    """The calibrated profiles, keyed by (gpu, model); each has `.values` and `.provenance`.

    >>> sorted(sweep.profile_catalog())[0]
    ('B200', 'llama-3.1-70b')
    """
    return load_catalog()


def workload_names() -> tuple[str, ...]:
    """Names of the built-in request-length CDFs a fleet grid's `workload` axis accepts.

    >>> "azure" in sweep.workload_names()
    True
    """
    return available_workloads()


def import_model(config, name: str | None = None, catalog=None) -> tuple[str, Path]:
    """Add the architecture of a local Hugging Face `config.json` to a model catalog file.

    Args:
        config: path to config.json (read locally; nothing is downloaded).
        name: the model id (lower-case letters, digits, '.', '-', '_'); default: from the config.
        catalog: the catalog TOML file to add to; default the user catalog
            `$SWEEP_HOME/models.toml`, which every grid reads.

    Returns (the model id, the catalog file written). Raises `SweepInputError` on a bad config or name, or a name
    already in that catalog.

    >>> sweep.import_model("qwen/config.json", name="my-qwen")   # doctest: +SKIP
    """
    if name is not None:
        check_model_name(name, "name")
    entry = import_hf_config(config, name=name)
    check_model_name(entry.name, f"{config} (the name derived from it; give one with name)")
    target = Path(catalog) if catalog else home() / "models.toml"
    add_model(entry.name, model_table(entry), target)
    return entry.name, target
