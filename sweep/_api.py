"""Public entry point: `run(spec)` evaluates a grid and returns a labelled xarray Dataset."""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import xarray as xr

from sweep import _calibrated, _grid
from sweep import _validate as V
from sweep._catalog_io import UnknownNameError, Value
from sweep._dataset import annotate, check_writable, global_attrs, write_netcdf
from sweep._efficiency import evaluate
from sweep._engine import Model, ProfileTable, run_grid
from sweep._errors import SweepInputError
from sweep._profile import CONTINUOUS_FIELDS, Profile
from sweep._user_catalog import usable_user_catalog, user_catalog_files  # noqa: F401 (re-exported)

RELAXATION_NOTE = (
    "elasticities are derivatives of the continuous relaxation of the model: every floor and "
    "ceiling (KV blocks per sequence, sequences per budget, int(n) in the power curve, instance "
    "counts) is replaced by its real-valued argument; values are exact (integer effects kept)"
)
UNCERTAINTY_NOTE = (
    "first-order propagation: each parameter with a catalog uncertainty u (relative half-width) "
    "has an independent uniform error on [-u, u] (variance u^2/3); rel_uncertainty = "
    "sqrt(sum_i (elasticity_i * u_i)^2 / 3) is the relative standard deviation of "
    "tokens_per_watt; low/high = value * (1 -/+ 2 * rel_uncertainty)"
)
ROOFLINE_ELASTICITY = (
    "hbm_bandwidth_bytes_per_s", "memory_bytes", "fp16_flops", "fp8_flops", "tdp_w", "power_idle_w",
    "power_nominal_w", "power_k", "power_x0", "gpu_memory_utilization", "reserve_bytes",
    "bandwidth_efficiency", "layer_overhead_s", "power_idle_fraction", "power_dynamic_fraction",
)
INSTANCE_OUTPUTS = ("concurrency", "iteration_time", "tokens_per_second", "gpu_power", "tokens_per_watt")
# fleet_metrics name -> Dataset name; pooled outputs get a trailing `pool` dim
FLEET_OUTPUTS = {
    "fleet_tokens_per_watt": "fleet_tokens_per_watt", "fleet_power_w": "fleet_power",
    "fleet_output_tokens_per_s": "fleet_output_tokens_per_second", "cost_per_mtok": "cost_per_mtok",
    "ttft_p99_s": "ttft_p99",
}
POOL_OUTPUTS = {
    "instances": "instances", "traffic_share": "traffic_share", "rho": "utilization", "n_act": "active_sequences",
    "power_w": "pool_power", "mean_service_s": "mean_service_time", "service_scv": "service_scv",
    "mean_output_tokens": "mean_output_tokens", "ttft_p99_pool_s": "pool_ttft_p99",
}
DENSE_MODEL = re.compile(r"^dense-(\d+(\.\d+)?(e[+-]?\d+)?)b$", re.IGNORECASE)


def as_spec(spec) -> _grid.GridSpec:
    """Accept a GridSpec, a dict or a path to a TOML grid file."""
    if isinstance(spec, _grid.GridSpec):
        return spec
    if isinstance(spec, dict):
        return _grid.parse(spec)
    if isinstance(spec, (str, os.PathLike)):
        return _grid.load(spec)
    raise SweepInputError(f"spec must be a path, a dict or a GridSpec, got {type(spec).__name__}")


# ---------------------------------------------------------------------------------------------
# Profile tables


def calibrated_table(spec: _grid.GridSpec) -> ProfileTable:
    """Profiles for every (gpu, model) of the grid from inline tables, then the catalog."""
    from sweep._hardware import default_gpu_catalog

    gpus = default_gpu_catalog()
    V.distinct(spec.where, "axes.gpu", spec.axes["gpu"], lambda g: gpus.resolve(g) if g in gpus else g.lower())
    catalog = _calibrated.load_catalog()
    inline = {}
    for i, entry in enumerate(spec.profiles):
        prof = _calibrated.parse_profile(entry, f"{spec.where}: profiles[{i}]")
        inline[(prof.gpu, prof.model)] = prof
    available = {**catalog, **inline}
    entries = []
    for gpu in spec.axes["gpu"]:
        for model in spec.axes["model"]:
            key = _lookup(available, gpu, model)
            if key is None:
                names = ", ".join(f"{g}/{m}" for g, m in sorted(available))
                raise SweepInputError(
                    f"{spec.where}: axes.gpu/axes.model: no calibrated profile for gpu {gpu!r} and "
                    f"model {model!r}; available: {names} (or define one in [[profiles]], or use "
                    f'profile = "roofline")'
                )
            entries.append(available[key])
    table = _calibrated.profile_table(entries, np.float64)
    return ProfileTable(
        categorical={"gpu": list(spec.axes["gpu"]), "model": list(spec.axes["model"])},
        theta=table._asdict(),
        derive=CalibratedDerive(),
        elasticity_params=CONTINUOUS_FIELDS,
        uncertainty={k: np.array([_unc(e.provenance.get(k)) for e in entries]) for k in CONTINUOUS_FIELDS},
        provenance={f"{e.gpu}/{e.model}": {k: vars(p) for k, p in e.provenance.items()} for e in entries},
    )


def _unc(value: Value | None) -> float:
    return value.uncertainty if value is not None and value.quality == "projected" else 0.0


def _lookup(available: dict, gpu: str, model: str):
    from sweep._hardware import default_gpu_catalog

    gpus = default_gpu_catalog()
    canon = gpus.resolve(gpu) if gpu in gpus else gpu
    for g, m in available:
        if g.lower() in (gpu.lower(), canon.lower()) and m.lower() == model.lower():
            return (g, m)
    return None


def _dense_entry(name: str):
    from sweep._models import ARCH_FIELDS, ModelEntry, dense_family

    n_params = float(DENSE_MODEL.match(name).group(1)) * 1e9
    arch = dense_family(n_params, integer=True)
    source = "sweep dense family (sweep._models.dense_family, integer shapes)"
    return ModelEntry(name, {k: Value(float(arch[k]), source, "projected", 0.0) for k in ARCH_FIELDS})


def _check_distinct_names(spec: _grid.GridSpec, gpus, models) -> None:
    """No two gpu (model) axis values may name the same catalog entry (case, aliases, dense-<N>b)."""
    def model(m):
        dense = DENSE_MODEL.match(m)
        return _grid.dense_model_name(float(dense.group(1)) * 1e9) if dense else models.resolve(m) if m in models else m

    V.distinct(spec.where, "axes.gpu", spec.axes["gpu"], lambda g: gpus.resolve(g) if g in gpus else g)
    V.distinct(spec.where, "axes.model", spec.axes["model"], model)


def roofline_table(spec: _grid.GridSpec) -> ProfileTable:
    """First-principles profiles for every combination of the grid's profile axes."""
    from sweep import _derive
    from sweep._hardware import GPU_FIELDS, load_gpu_catalog
    from sweep._models import load_model_catalog

    where = spec.where
    (user_gpus, gpu_note), (user_models, model_note) = usable_user_catalog("gpus"), usable_user_catalog("models")
    try:
        gpus = load_gpu_catalog([*user_gpus, *spec.gpu_catalogs], spec.gpus)
        models = load_model_catalog([*user_models, *spec.model_catalogs], spec.models, spec.model_configs)
    except SweepInputError as exc:
        raise SweepInputError(f"{where}: {exc}") from None
    _check_distinct_names(spec, gpus, models)
    names = [n for n in spec.axes if _grid.AXES[n].group == "profile"]
    rows, provenance, unc = [], {}, []
    for combo in itertools.product(*(spec.axes[n] for n in names)):
        point = {**spec.params, **dict(zip(names, combo))}
        try:
            g = gpus.get(point["gpu"])
            m = _dense_entry(point["model"]) if DENSE_MODEL.match(point["model"]) else models.get(point["model"])
            kwargs = {k: point[k] for k in ("tp", "weight_dtype", "kv_dtype", "kv_block_tokens",
                                            "gpu_memory_utilization", "reserve_bytes", "prefill_chunk_tokens",
                                            "moe_dispatch_overhead_s") if point.get(k) is not None}
            serving = _derive.serving_config(power_model=spec.power_model, **kwargs)
            _derive.check_setup(g, m, serving)
        except SweepInputError as exc:
            note = (gpu_note + model_note) if isinstance(exc, UnknownNameError) else ""
            raise SweepInputError(f"{where}: {exc}{note}") from None
        gpu_arrays, model_arrays = g.arrays(), m.arrays()
        row = {**{f"gpu.{k}": v for k, v in gpu_arrays.items()}, **{f"model.{k}": v for k, v in model_arrays.items()},
               **{f"serving.{k}": v for k, v in serving.items()}}
        rows.append({k: float(v) for k, v in row.items()})
        unc.append({f"gpu.{k}": _unc(g.specs.get(k)) for k in GPU_FIELDS})
        provenance[f"{g.name}/{m.name}"] = {
            **{k: vars(v) for k, v in g.specs.items()}, **{k: vars(v) for k, v in m.arch.items()}
        }
    keys = sorted(set().union(*rows))
    if any(set(r) != set(keys) for r in rows):
        raise SweepInputError(f"{where}: serving keys differ between profiles; give each key for all or none")
    theta = {k: np.array([r[k] for r in rows]) for k in keys}
    elastic = tuple(k for k in (f"gpu.{n}" for n in ROOFLINE_ELASTICITY) if k in theta) + tuple(
        k for k in (f"serving.{n}" for n in ROOFLINE_ELASTICITY) if k in theta)
    return ProfileTable(
        categorical={n: list(spec.axes[n]) for n in names},
        theta=theta,
        derive=RooflineDerive(spec.convention),
        elasticity_params=elastic,
        uncertainty={k: np.array([u.get(k, 0.0) for u in unc]) for k in elastic},
        provenance=provenance,
    )


# ---------------------------------------------------------------------------------------------
# Models evaluated by the engine


@dataclass(frozen=True)
class CalibratedDerive:
    """θ = the Profile fields themselves."""

    def __call__(self, theta, relaxed=False):
        return Profile(**theta)


@dataclass(frozen=True)
class RooflineDerive:
    """θ = {"gpu.*", "model.*", "serving.*"} arrays -> `sweep._derive.derive_profile`."""

    convention: str

    def __call__(self, theta, relaxed=False):
        from sweep import _derive

        split = {"gpu": {}, "model": {}, "serving": {}}
        for k, v in theta.items():
            group, name = k.split(".", 1)
            split[group][name] = v
        return _derive.derive_profile(split["gpu"], split["model"], split["serving"], convention=self.convention,
                                      relaxed=relaxed)


@dataclass(frozen=True)
class InstanceModel(Model):
    """Single-instance metrics (sweep._efficiency.evaluate) on (profile, context, batch, …)."""

    convention: str

    @property
    def outputs(self):
        outputs = {k: (None, ()) for k in INSTANCE_OUTPUTS}
        outputs["bound"] = (np.int8, ())
        if self.convention == "physical":
            outputs["instance_power"] = (None, ())
        return outputs

    target = "tokens_per_watt"

    @property
    def pre(self):
        return ContextModel()

    def __call__(self, profile, value, relaxed, extras, pre):
        n_max = pre["max_concurrency"].astype(profile.kv_blocks.dtype) if pre else None
        out = evaluate(profile, value("context"), value("batch"), value("mean_length_fraction"), value("load"),
                       convention=self.convention, relaxed=relaxed, n_max=n_max)
        out["bound"] = out.pop("compute_bound")
        return out


@dataclass(frozen=True)
class ContextModel(Model):
    """n_max and feasibility: they depend on (profile, context) only."""

    outputs = {"max_concurrency": (np.int64, ()), "feasible": (np.int8, ())}
    target = "max_concurrency"

    def __call__(self, profile, value, relaxed, extras, pre):
        from sweep._concurrency import max_concurrency

        n_max = max_concurrency(profile, value("context"), relaxed=relaxed)
        return {"max_concurrency": n_max, "feasible": (n_max >= 1).astype(jnp.int8)}


@dataclass(frozen=True)
class FleetModel(Model):
    """Fleet metrics (sweep._fleet.fleet_metrics); extras = stacked workload (lengths, cum)."""

    convention: str

    @property
    def outputs(self):
        outputs = {v: (None, ()) for v in FLEET_OUTPUTS.values()}
        outputs.update({v: (None, (2,)) for v in POOL_OUTPUTS.values()})
        outputs["meets_slo"] = (np.int8, ())
        return outputs

    target = "fleet_tokens_per_watt"

    def __call__(self, profile, value, relaxed, extras, pre):
        from sweep._fleet import fleet_metrics
        from sweep._workload import Workload

        index = value("workload").astype(jnp.int32)
        workload = Workload(extras[0][index], extras[1][index])
        lengths = "planner" if self.convention == "paper" else "exact"
        out = fleet_metrics(profile, workload, value("arrival_rate"), value("topology").astype(jnp.int32),
                            value("b_short"), value("gamma"), value("long_context"), value("ttft_p99_s"),
                            value("rho_max"), value("output_share"), convention=self.convention,
                            relaxed=relaxed, lengths=lengths)
        renamed = {FLEET_OUTPUTS[k]: out[k] for k in FLEET_OUTPUTS}
        renamed.update({POOL_OUTPUTS[k]: out[k] for k in POOL_OUTPUTS})
        renamed["meets_slo"] = (out["ttft_p99_s"] <= value("ttft_p99_s")).astype(jnp.int8)
        return renamed


# ---------------------------------------------------------------------------------------------


def run(spec, out=None, *, elasticities: bool | None = None, progress=None, command: str | None = None) -> xr.Dataset:
    """Evaluate a grid spec (path, dict or GridSpec) and return an `xarray.Dataset`.

    With `out`, also write it to NetCDF (atomically). `elasticities` overrides the spec's flag.
    """
    from sweep import __version__

    spec = as_spec(spec)
    if elasticities is not None:
        spec = dataclasses.replace(spec, elasticities=bool(elasticities) or spec.uncertainty)
    if out is not None:
        check_writable(out)
    table = calibrated_table(spec) if spec.profile == "calibrated" else roofline_table(spec)
    point_axes = [n for n in spec.axes if _grid.AXES[n].group != "profile"]
    point_params = {k: v for k, v in spec.params.items() if _grid.AXES[k].group != "profile"}
    model = InstanceModel(spec.convention) if spec.mode == "instance" else FleetModel(spec.convention)
    unknown = sorted(set(spec.outputs) - set(model.outputs))
    if unknown:
        raise SweepInputError(f"{spec.where}: outputs: unknown output(s) {unknown}; allowed: {', '.join(model.outputs)}")
    keep = tuple(k for k in model.outputs if k in spec.outputs or k == model.target) if spec.outputs else None
    options = dict(dtype=spec.dtype, chunk_points=spec.chunk_points, progress=progress)
    extra_attrs = {}
    if spec.mode == "instance":
        axes = {n: np.asarray(spec.axes[n], dtype=np.float64) for n in point_axes}
        # the results include the model's `pre` pass: max_concurrency and feasible on (profile, context)
        results = run_grid(table, axes, point_params, model, elasticities=spec.elasticities, keep=keep, **options)
    else:
        from sweep._fleet import TOPOLOGIES
        from sweep._workload import load_workload, stack_workloads

        base = Path(spec.where).parent if spec.where != "<dict>" else Path(".")
        loaded = []
        for name in spec.axes["workload"]:
            source = name if not name.endswith(".json") or Path(name).is_absolute() else str(base / name)
            try:
                loaded.append(load_workload(source))
            except SweepInputError as exc:
                raise SweepInputError(f"{spec.where}: axes.workload: {exc}") from None
        codes = {"workload": np.arange(len(loaded)), "topology": np.array([TOPOLOGIES[t] for t in spec.axes["topology"]])}
        axes = {n: codes[n] if n in codes else np.asarray(spec.axes[n], dtype=np.float64) for n in point_axes}
        stacked = stack_workloads(loaded)
        extras = (np.asarray(stacked.lengths_tokens), np.asarray(stacked.cum_fraction))
        results = run_grid(table, axes, point_params, model, elasticities=spec.elasticities, keep=keep,
                           extras=extras, **options)
        extra_attrs["fleet_lengths"] = (
            "planner (paper convention: the planner's routing of the long pool's first CDF segment and its count of "
            "compressed requests' output tokens)" if spec.convention == "paper" else
            "exact (requests routed by (lo, hi], compressed requests generate the clipped output)")
    if spec.elasticities:
        mask_elasticities(results, model.target)
    ds = to_dataset(table, spec, point_axes, results)
    if spec.uncertainty:
        add_uncertainty(ds, table)
        extra_attrs["uncertainty_method"] = UNCERTAINTY_NOTE
    ds.attrs = global_attrs(
        title=spec.title,
        convention=spec.convention,
        spec=spec.raw,
        command=command or f"sweep.run({spec.where!r})",
        version=__version__,
        extra={"profile_kind": spec.profile, "profile_provenance": json.dumps(table.provenance, sort_keys=True),
               **{k: v for k, v in spec.params.items() if v is not None},
               **({"elasticity_method": RELAXATION_NOTE} if spec.elasticities else {}), **extra_attrs},
    )
    if out is not None:
        write_netcdf(ds, out)
    return ds


def mask_elasticities(results: dict, target: str) -> None:
    """NaN elasticities where ln of the exact target is undefined (0 or not finite) or no sequence
    fits: the relaxed model differentiated there has neither n_max = 0 nor floor(load·n_max) = 0."""
    y = results[target]
    bad = ~np.isfinite(y) | (y == 0)
    if "feasible" in results:  # on the (profile, context) sub-grid
        infeasible = results["feasible"] == 0
        bad |= np.expand_dims(infeasible, tuple(range(infeasible.ndim, y.ndim)))
    results["elasticity"][:, bad] = np.nan


def to_dataset(table: ProfileTable, spec: _grid.GridSpec, point_axes: list, results: dict) -> xr.Dataset:
    """Label the engine's arrays: profile dims first, then the point axes (then `pool`)."""
    cat_names = list(table.categorical)
    cat_shape = tuple(len(v) for v in table.categorical.values())
    coords = {}
    for n in cat_names + point_axes:
        values = spec.axes[n]
        if isinstance(values[0], str):
            coords[n] = np.asarray(values, dtype=object)
        elif all(isinstance(v, int) for v in values):
            coords[n] = np.asarray(values, dtype=np.int64)
        else:
            coords[n] = np.asarray(values, dtype=np.float64)
    data_vars = {}
    for k, arr in results.items():
        if k == "elasticity":
            continue
        arr = arr.reshape(cat_shape + arr.shape[1:])
        dims = cat_names + (["context"] if k in ("max_concurrency", "feasible") else point_axes)
        dims += ["pool"] * (arr.ndim - len(dims))
        data_vars[k] = (dims, arr)
    if "pool" in {d for dims, _ in data_vars.values() for d in dims}:
        coords["pool"] = np.asarray(["short", "long"], dtype=object)
    if "elasticity" in results:
        e = results["elasticity"]
        dims = ["parameter"] + cat_names + point_axes
        data_vars["elasticity"] = (dims, e.reshape(e.shape[:1] + cat_shape + e.shape[2:]))
        coords["parameter"] = np.asarray([k.split(".", 1)[-1] for k in table.elasticity_params], dtype=object)
    return annotate(xr.Dataset(data_vars, coords=coords))


def add_uncertainty(ds: xr.Dataset, table: ProfileTable) -> None:
    """tokens/W relative uncertainty and a ±2σ band from the elasticities (see UNCERTAINTY_NOTE)."""
    target = "fleet_tokens_per_watt" if "fleet_tokens_per_watt" in ds else "tokens_per_watt"
    cat_shape = tuple(len(v) for v in table.categorical.values())
    u = np.stack([table.uncertainty.get(k, np.zeros(len(next(iter(table.theta.values())))))
                  for k in table.elasticity_params]).reshape((-1,) + cat_shape)
    u = xr.DataArray(u, dims=["parameter"] + list(table.categorical), coords={"parameter": ds.parameter})
    rel = np.sqrt(((ds.elasticity * u) ** 2).sum("parameter", skipna=False) / 3.0)
    ds[f"{target}_rel_uncertainty"] = rel
    ds[f"{target}_low"] = ds[target] * (1 - 2 * rel)
    ds[f"{target}_high"] = ds[target] * (1 + 2 * rel)
    ds["uncertainty"] = u
    annotate(ds)
