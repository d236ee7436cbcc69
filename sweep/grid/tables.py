"""Profile tables: every (gpu, model, serving) row of a grid, from calibrated or first-principles profiles.

A `ProfileTable` holds the rows as struct-of-arrays θ, plus how to turn θ into a `Profile` (`derive`),
which θ entries get elasticities, their uncertainties and provenance.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from sweep import validate as V
from sweep.calibration.store import BUILTIN, load_calibration
from sweep.catalogs import gpus as _gpus
from sweep.catalogs import llms as _llms
from sweep.catalogs import profiles as _calibrated
from sweep.catalogs import setups
from sweep.catalogs.gpus import GPU_FIELDS, default_gpu_catalog, load_gpu_catalog
from sweep.catalogs.llms import ModelEntry, load_model_catalog
from sweep.catalogs.provenance import Value
from sweep.catalogs.user import home, usable_user_catalog
from sweep.errors import SweepInputError, UnknownNameError
from sweep.fleet.workload import WORKLOAD_DIR, available_workloads
from sweep.grid import spec as _grid
from sweep.grid.engine import ProfileTable
from sweep.physics import derive
from sweep.physics.architecture import ARCH_FIELDS, MODEL_FIELDS, dense_family
from sweep.physics.mechanisms import MECHANISMS
from sweep.physics.profile import CONTINUOUS_FIELDS, LOGISTIC_POWER, Profile

ROOFLINE_ELASTICITY = (
    "hbm_bandwidth_bytes_per_s",
    "memory_bytes",
    "fp16_flops",
    "fp8_flops",
    "tdp_w",
    "power_idle_w",
    "power_nominal_w",
    "power_k",
    "power_x0",
    "gpu_memory_utilization",
    "reserve_bytes",
    "bandwidth_efficiency",
    "layer_overhead_s",
    "power_idle_fraction",
    "power_dynamic_fraction",
)
CALIBRATED_ELASTICITY = tuple(MECHANISMS)  # with a calibration: every mechanism gets an elasticity
DENSE_MODEL = _grid.DENSE_MODEL  # dense-<N>b (N billion parameters)


# ---------------------------------------------------------------------------------------------
# Profile tables


def calibrated_table(spec: _grid.GridSpec) -> ProfileTable:
    """Profiles for every (gpu, model) of the grid from inline tables, then the catalog."""
    gpus = default_gpu_catalog()
    V.distinct(
        spec.where, "axes.gpu", spec.axes["gpu"], lambda g: gpus.resolve(g) if g in gpus else g.lower()
    )
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
            entries.append(_with_catalog_price(available[key], gpus))
    table = _calibrated.profile_table(entries, np.float64)
    return ProfileTable(
        categorical={"gpu": list(spec.axes["gpu"]), "model": list(spec.axes["model"])},
        theta={**table._asdict(), "max_context_tokens": _context_limits(spec, [e.model for e in entries])},
        derive=CalibratedDerive(),
        elasticity_params=CONTINUOUS_FIELDS,
        uncertainty={k: np.array([_unc(e.provenance.get(k)) for e in entries]) for k in CONTINUOUS_FIELDS},
        provenance={f"{e.gpu}/{e.model}": {k: vars(p) for k, p in e.provenance.items()} for e in entries},
    )


def _unc(value: Value | None) -> float:
    return value.uncertainty if value is not None and value.quality == "projected" else 0.0


def _calibrated_unc(value: float, standard_error: float) -> float:
    """Relative half-width of the uniform band with the fitted standard error: √3·SE/|value| (0 at 0)."""
    return math.sqrt(3.0) * standard_error / abs(value) if value else 0.0


def _calibrated_provenance(calibration, values: dict, errors: dict, quality: str) -> dict:
    """Provenance of the mechanism values a calibration gives one setup."""
    how = "fitted" if quality == "calibrated" else "mean of the calibrated GPUs (this GPU was not measured)"
    out = {}
    for k, v in values.items():
        fitted = k in errors
        out[k] = {
            "value": v,
            "source": f"calibration {calibration.name}: "
            + (how if fitted else "fixed prior (docs/calibration.md §3)"),
            "quality": quality if fitted else "projected",
            "uncertainty": _calibrated_unc(v, errors[k]) if fitted else 0.0,
        }
    return out


def _lookup(available: dict, gpu: str, model: str):
    gpus = default_gpu_catalog()
    canon = gpus.resolve(gpu) if gpu in gpus else gpu
    for g, m in available:
        if g.lower() in (gpu.lower(), canon.lower()) and m.lower() == model.lower():
            return (g, m)
    return None


_DENSE_ENTRIES: dict = {}  # dense-<N>b name -> ModelEntry, each size derived once per process
DENSE_SOURCE = "sweep dense family (sweep.physics.architecture.dense_family, integer shapes)"
DENSE_BATCH = 256  # sizes per vectorised dense_family call: one array shape, compiled once per process


def _dense_entries(names) -> dict:
    """name -> ModelEntry of each dense-<N>b name in `names` (N billion parameters).

    The sizes not derived yet in this process come from vectorised `dense_family(N, integer=True)`
    calls, DENSE_BATCH sizes each (padded: every call has the same shape). The family is
    elementwise, so each size is bit-for-bit its own scalar call.
    """
    new = [n for n in dict.fromkeys(names) if n not in _DENSE_ENTRIES]
    for start in range(0, len(new), DENSE_BATCH):
        batch = new[start : start + DENSE_BATCH]
        n_params = np.full(DENSE_BATCH, float(DENSE_MODEL.match(batch[-1]).group(1)) * 1e9)
        n_params[: len(batch)] = [float(DENSE_MODEL.match(n).group(1)) * 1e9 for n in batch]
        arch = {k: np.asarray(v) for k, v in dense_family(n_params, integer=True).items() if k in ARCH_FIELDS}
        for i, name in enumerate(batch):
            _DENSE_ENTRIES[name] = ModelEntry(
                name, {k: Value(float(arch[k][i]), DENSE_SOURCE, "projected", 0.0) for k in ARCH_FIELDS}
            )
    return {n: _DENSE_ENTRIES[n] for n in names}


def _dense_entry(name: str) -> ModelEntry:
    """The ModelEntry of one dense-<N>b name (`_dense_entries`)."""
    return _dense_entries([name])[name]


def _check_distinct_names(spec: _grid.GridSpec, gpus, models) -> None:
    """No two gpu (model) axis values may name the same catalog entry (case, aliases, dense-<N>b)."""

    def model(m):
        dense = DENSE_MODEL.match(m)
        return (
            _grid.dense_model_name(float(dense.group(1)) * 1e9)
            if dense
            else models.resolve(m)
            if m in models
            else m
        )

    V.distinct(spec.where, "axes.gpu", spec.axes["gpu"], lambda g: gpus.resolve(g) if g in gpus else g)
    V.distinct(spec.where, "axes.model", spec.axes["model"], model)


SERVING_AXES = (
    "tp",
    "expert_parallel",
    "data_parallel",
    "weight_dtype",
    "kv_dtype",
    "kv_block_tokens",
    "gpu_memory_utilization",
    "reserve_bytes",
    "prefill_chunk_tokens",
    "moe_dispatch_overhead_s",
    "prefill_tokens_per_output",
)  # profile axes (or scalar keys) that go to `setups.serving_values`
# serving axis -> the serving keys its value sets (others: the axis name itself)
SERVING_AXIS_KEYS = {
    "weight_dtype": ("weight_dtype_bytes", "expert_weight_dtype_bytes"),
    "kv_dtype": ("kv_dtype_bytes",),
}


def _along(values, dim: int, ndim: int) -> np.ndarray:
    """A 1-D (or, from dim on, n-D) array shaped to broadcast along profile dims dim, dim + 1, …"""
    values = np.asarray(values)
    return values.reshape((1,) * dim + values.shape + (1,) * (ndim - dim - values.ndim))


def _rows(column, shape: tuple) -> np.ndarray:
    """A column broadcast over the profile axes, in C order: one value per profile row, (K,)."""
    rows = np.empty(math.prod(shape), dtype=np.result_type(column))
    rows.reshape(shape)[...] = column
    return rows


def _calibrated_setups(calibration, gpu_entries: list, model_entries: list) -> tuple:
    """`calibration.for_setup` of every (gpu, model) pair: (distinct results by key, (n_gpu, n_model) keys).

    A pair without its own group gets what the calibration gives its GPU (its group, or the mean over
    that GPU's groups or over all), so that is computed once per GPU, not once per pair.
    """
    results, keys = {}, []
    for g in gpu_entries:
        row = []
        for m in model_entries:
            key = (g.name, m.name) if f"{g.name}/{m.name}" in calibration.groups else (g.name,)
            if key not in results:
                results[key] = calibration.for_setup(g.name, m.name)
            row.append(key)
        keys.append(row)
    return results, keys


def _serving_columns(spec: _grid.GridSpec, names: list, calibrated) -> dict:
    """serving key -> its values as an array that broadcasts over the profile axes `names`.

    Every value is checked by `setups.serving_values` once: each scalar key, each value of each
    serving axis, each distinct calibrated setup (whose mechanism values override, as before).
    """
    ndim = len(names)
    given = {k: spec.params[k] for k in SERVING_AXES if spec.params.get(k) is not None}
    swept = [n for n in names if n in SERVING_AXES]
    first = {**given, **{n: spec.axes[n][0] for n in swept}}
    cal_first = next(iter(calibrated[0].values()))[0] if calibrated else {}
    template = setups.serving_values(power_model=spec.power_model, **first, **cal_first)
    columns = {k: np.asarray(v, dtype=np.float64) for k, v in template.items()}
    for n in swept:
        keys = SERVING_AXIS_KEYS.get(n, (n,))
        if n == "weight_dtype" and "kv_dtype" not in first:  # the KV dtype follows the weight dtype
            keys += ("kv_dtype_bytes",)
        values = [
            setups.serving_values(power_model=spec.power_model, **{**first, n: v}) for v in spec.axes[n]
        ]
        for k in keys:
            columns[k] = _along(np.array([s[k] for s in values], dtype=np.float64), names.index(n), ndim)
    if calibrated:
        results, pairs = calibrated
        checked = {key: setups.serving_values(**values) for key, (values, _, _) in results.items()}
        for k in cal_first:
            table = np.array([[checked[key][k] for key in row] for row in pairs], dtype=np.float64)
            columns[k] = _along(table, 0, ndim)
    return columns


def _check_setups(shape: tuple, gpu_entries: list, model_entries: list, serving: dict) -> None:
    """`setups.check_setup` on every profile row at once: its fp8, TP, EP/DP layout, MXFP4 and logistic-power rules as
    arrays; the first row (C order) that breaks one is checked again one by one, for its message."""
    ndim = len(shape)
    gpu = {
        "fp8": np.array([g.supports_fp8 for g in gpu_entries]),
        "logistic": np.array([g.has_logistic_power for g in gpu_entries]),
    }
    gpu = {k: _along(v, 0, ndim) for k, v in gpu.items()}
    heads, kv_heads, mla = (
        _along(np.trunc([m.value(k) for m in model_entries]), 1, ndim)
        for k in ("n_heads", "n_kv_heads", "mla")
    )
    experts, mxfp4 = (
        _along(np.array([m.value(k) for m in model_entries]), 1, ndim) for k in ("n_experts", "mxfp4_experts")
    )
    tp = serving["tp"]
    tp_ok = (np.fmod(heads, tp) == 0) & (
        (mla > 0) | (np.fmod(kv_heads, tp) == 0) | (np.fmod(tp, kv_heads) == 0)
    )
    ep, gpus_per_instance = serving["expert_parallel"], tp * serving["data_parallel"]
    layout_ok = (np.fmod(gpus_per_instance, ep) == 0) & (
        (ep == 1) | ((experts > 0) & (np.fmod(experts, ep) == 0))
    )
    bad = (
        ((serving["weight_dtype_bytes"] == 1.0) & ~gpu["fp8"])
        | ~tp_ok
        | ~layout_ok
        | ((serving["expert_weight_dtype_bytes"] > 0) & (mxfp4 == 0))
        | ((serving["power_model"] == LOGISTIC_POWER) & ~gpu["logistic"])
    )
    bad = np.broadcast_to(bad, shape)
    if bad.any():
        row = np.unravel_index(np.flatnonzero(bad)[0], shape)
        values = {k: float(np.broadcast_to(v, shape)[row]) for k, v in serving.items()}
        setups.check_setup(gpu_entries[row[0]], model_entries[row[1]], values)


def roofline_table(spec: _grid.GridSpec) -> ProfileTable:
    """First-principles profiles for every combination of the grid's profile axes.

    No Python work per profile row: each GPU, model (all dense-<N>b sizes in one vectorised call),
    serving value and calibrated setup is read and checked once, and every θ column is then
    broadcast over the profile axes (row k of the table gathers its GPU's, model's and serving
    values by index). `sweep.physics.derive.derive_profile` runs on the rows inside the kernel.
    """
    where = spec.where
    (user_gpus, gpu_note), (user_models, model_note) = (
        usable_user_catalog("gpus"),
        usable_user_catalog("models"),
    )
    try:
        gpus = load_gpu_catalog([*user_gpus, *spec.gpu_catalogs], spec.gpus)
        models = load_model_catalog([*user_models, *spec.model_catalogs], spec.models, spec.model_configs)
    except SweepInputError as exc:
        raise SweepInputError(f"{where}: {exc}") from None
    _check_distinct_names(spec, gpus, models)
    names = [n for n in spec.axes if _grid.AXES[n].group == "profile"]  # gpu, model first
    shape = tuple(len(spec.axes[n]) for n in names)
    ndim = len(names)
    calibration = load_calibration(spec.calibration) if spec.calibration else None
    try:
        gpu_entries = [gpus.get(g) for g in spec.axes["gpu"]]
        dense = _dense_entries([m for m in spec.axes["model"] if DENSE_MODEL.match(m)])
        model_entries = [dense[m] if m in dense else models.get(m) for m in spec.axes["model"]]
        calibrated = (
            _calibrated_setups(calibration, gpu_entries, model_entries) if calibration is not None else None
        )
        serving = _serving_columns(spec, names, calibrated)
        _check_setups(shape, gpu_entries, model_entries, serving)
    except SweepInputError as exc:
        note = (gpu_note + model_note) if isinstance(exc, UnknownNameError) else ""
        raise SweepInputError(f"{where}: {exc}{note}") from None
    gpu_values = [g.field_values() for g in gpu_entries]
    model_values = [m.field_values() for m in model_entries]
    columns = {
        **{f"gpu.{k}": _along(np.array([v[k] for v in gpu_values], np.float64), 0, ndim) for k in GPU_FIELDS},
        **{
            f"model.{k}": _along(np.array([v[k] for v in model_values], np.float64), 1, ndim)
            for k in MODEL_FIELDS
        },
        **{f"serving.{k}": v for k, v in serving.items()},
    }
    theta = {k: _rows(columns[k], shape) for k in sorted(columns)}
    serving_elastic = ROOFLINE_ELASTICITY + (CALIBRATED_ELASTICITY if calibration is not None else ())
    elastic = tuple(k for k in (f"gpu.{n}" for n in ROOFLINE_ELASTICITY) if k in theta) + tuple(
        k for k in dict.fromkeys(f"serving.{n}" for n in serving_elastic) if k in theta
    )
    unc = {
        f"gpu.{k}": _along(np.array([_unc(g.specs.get(k)) for g in gpu_entries]), 0, ndim) for k in GPU_FIELDS
    }
    gpu_provenance = [{k: vars(v) for k, v in g.specs.items()} for g in gpu_entries]
    model_provenance = [{k: vars(v) for k, v in m.arch.items()} for m in model_entries]
    setup_provenance = {}
    if calibrated is not None:
        results, pairs = calibrated
        for name in dict.fromkeys(k for _, se, _ in results.values() for k in se):
            relative = {  # relative uncertainty of each distinct setup's value (0: not fitted there)
                key: _calibrated_unc(v[name], se[name]) if name in se else 0.0
                for key, (v, se, _) in results.items()
            }
            unc[f"serving.{name}"] = _along(
                np.array([[relative[key] for key in row] for row in pairs]), 0, ndim
            )
        setup_provenance = {
            key: _calibrated_provenance(calibration, *result) for key, result in results.items()
        }
    provenance = {}
    for i, g in enumerate(gpu_entries):
        for j, m in enumerate(model_entries):
            provenance[f"{g.name}/{m.name}"] = {
                **gpu_provenance[i],
                **model_provenance[j],
                **(setup_provenance[calibrated[1][i][j]] if calibrated is not None else {}),
            }
    return ProfileTable(
        categorical={n: list(spec.axes[n]) for n in names},
        theta=theta,
        derive=RooflineDerive(spec.convention),
        elasticity_params=elastic,
        uncertainty={k: _rows(unc[k], shape) if k in unc else np.zeros(theta[k].shape) for k in elastic},
        normal=tuple(f"serving.{n}" for n in MECHANISMS) if calibration is not None else (),
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
    """θ = {"gpu.*", "model.*", "serving.*"} arrays -> `sweep.physics.derive.derive_profile`."""

    convention: str

    def __call__(self, theta, relaxed=False):
        split = {"gpu": {}, "model": {}, "serving": {}}
        for k, v in theta.items():
            group, name = k.split(".", 1)
            split[group][name] = v
        return derive.derive_profile(
            split["gpu"], split["model"], split["serving"], convention=self.convention, relaxed=relaxed
        )


def profile_table(spec: _grid.GridSpec) -> ProfileTable:
    """The grid's profile table: calibrated or first-principles, as `spec.profile` says."""
    return calibrated_table(spec) if spec.profile == "calibrated" else roofline_table(spec)


# ---------------------------------------------------------------------------------------------
# Catalog facts a calibrated profile does not carry


def grid_models(spec: _grid.GridSpec, names) -> dict:
    """name -> ModelEntry for each of `names` that the grid's model catalogs know (built-in, user,
    the grid's files, inline tables and configs, dense-<N>b); unknown names (or catalogs that do not
    load) are left out."""
    try:
        models = load_model_catalog(
            [*usable_user_catalog("models")[0], *spec.model_catalogs], spec.models, spec.model_configs
        )
    except SweepInputError:
        return {}
    found = {}
    for name in dict.fromkeys(names):
        if DENSE_MODEL.match(name):
            found[name] = _dense_entry(name)
        elif name in models:
            found[name] = models.get(name)
    return found


def _context_limits(spec: _grid.GridSpec, names: list) -> np.ndarray:
    """(K,) maximum context of each row's model (`max_context_tokens`; 0 where unknown)."""
    known = grid_models(spec, names)
    return np.array(
        [
            known[n].arch["max_context_tokens"].value
            if n in known and "max_context_tokens" in known[n].arch
            else 0.0
            for n in names
        ],
        dtype=np.float64,
    )


def _with_catalog_price(profile, gpus):
    """A calibrated profile without its own price_per_gpu_hour takes the GPU catalog's (with its provenance)."""
    given = profile.provenance.get("price_per_gpu_hour")
    if given is None or given.source != _calibrated.DEFAULT_SOURCE or profile.gpu not in gpus:
        return profile
    price = gpus.get(profile.gpu).specs.get("price_per_gpu_hour")
    if price is None:
        return profile
    return dataclasses.replace(
        profile,
        values={**profile.values, "price_per_gpu_hour": price.value},
        provenance={**profile.provenance, "price_per_gpu_hour": price},
    )


# ---------------------------------------------------------------------------------------------
# The files a grid's results depend on


def described_inputs(spec: _grid.GridSpec) -> list:
    """(path, description) of every file the grid's numbers are read from, absent ones too (a user catalog
    may appear later): the built-in catalogs, the user catalogs ($SWEEP_HOME), the grid's catalogs, configs
    and calibration, and its workload CDFs. A resumed run checks that none changed
    (sweep.io.stream.file_digests); an output must replace none of them (sweep.io.files.check_not_an_input)."""
    named = f" named in {spec.where}" if spec.where != "<dict>" else ""
    found = [
        (_gpus.CATALOG_PATH, "the built-in GPU catalog"),
        (_llms.CATALOG_PATH, "the built-in model catalog"),
        (_gpus.CATALOG_PATH.parent / "profiles.toml", "the built-in profile catalog"),
        (home() / "gpus.toml", f"the user GPU catalog {home() / 'gpus.toml'}"),
        (home() / "models.toml", f"the user model catalog {home() / 'models.toml'}"),
    ]
    for paths, what in (
        (spec.gpu_catalogs, "the GPU catalog"),
        (spec.model_catalogs, "the model catalog"),
        (spec.model_configs, "the model config"),
    ):
        found += [(p, f"{what} {p}{named}") for p in paths]
    if spec.calibration is not None:
        path = BUILTIN.get(spec.calibration, spec.calibration)
        what = "the built-in calibration" if spec.calibration in BUILTIN else "the calibration file"
        found.append((path, f"{what} {spec.calibration}{named}"))
    if spec.mode == "fleet":
        for name in spec.value("workload"):
            if name in available_workloads():
                found.append((WORKLOAD_DIR / f"{name}.json", f"the built-in workload {name}"))
            else:
                found.append(
                    (spec.workload_source(name), f"the workload file {spec.workload_source(name)}{named}")
                )
    unique = {}
    for path, what in found:
        unique.setdefault(str(path), what)
    return list(unique.items())


def input_files(spec: _grid.GridSpec) -> list:
    """The paths of `described_inputs(spec)`."""
    return [path for path, _ in described_inputs(spec)]
