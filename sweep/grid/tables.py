"""Profile tables: every (gpu, model, serving) row of a grid, from calibrated or first-principles profiles.

A `ProfileTable` holds the rows as struct-of-arrays θ, plus how to turn θ into a `Profile` (`derive`),
which θ entries get elasticities, their uncertainties and provenance.
"""

from __future__ import annotations

import functools
import itertools
import math
import re
from dataclasses import dataclass

import numpy as np

from sweep import validate as V
from sweep.calibration.store import load_calibration
from sweep.catalogs import profiles as _calibrated
from sweep.catalogs import setups
from sweep.catalogs.gpus import GPU_FIELDS, default_gpu_catalog, load_gpu_catalog
from sweep.catalogs.llms import ModelEntry, load_model_catalog
from sweep.catalogs.provenance import Value
from sweep.catalogs.user import usable_user_catalog
from sweep.errors import SweepInputError, UnknownNameError
from sweep.grid import spec as _grid
from sweep.grid.engine import ProfileTable
from sweep.physics import derive
from sweep.physics.architecture import ARCH_FIELDS, dense_family
from sweep.physics.mechanisms import MECHANISMS
from sweep.physics.profile import CONTINUOUS_FIELDS, Profile

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
DENSE_MODEL = re.compile(r"^dense-(\d+(\.\d+)?(e[+-]?\d+)?)b$", re.IGNORECASE)


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


@functools.cache  # one derivation per distinct size, not per profile row (issue #12)
def _dense_entry(name: str):
    n_params = float(DENSE_MODEL.match(name).group(1)) * 1e9
    arch = dense_family(n_params, integer=True)
    source = "sweep dense family (sweep.physics.architecture.dense_family, integer shapes)"
    return ModelEntry(name, {k: Value(float(arch[k]), source, "projected", 0.0) for k in ARCH_FIELDS})


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


def roofline_table(spec: _grid.GridSpec) -> ProfileTable:
    """First-principles profiles for every combination of the grid's profile axes."""
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
    names = [n for n in spec.axes if _grid.AXES[n].group == "profile"]
    calibration = load_calibration(spec.calibration) if spec.calibration else None
    rows, provenance, unc, gpu_rows, model_rows, servings = [], {}, [], {}, {}, {}
    for combo in itertools.product(*(spec.axes[n] for n in names)):
        point = {**spec.params, **dict(zip(names, combo))}
        try:
            g = gpus.get(point["gpu"])
            m = (
                _dense_entry(point["model"])
                if DENSE_MODEL.match(point["model"])
                else models.get(point["model"])
            )
            kwargs = {
                k: point[k]
                for k in (
                    "tp",
                    "weight_dtype",
                    "kv_dtype",
                    "kv_block_tokens",
                    "gpu_memory_utilization",
                    "reserve_bytes",
                    "prefill_chunk_tokens",
                    "moe_dispatch_overhead_s",
                    "prefill_tokens_per_output",
                )
                if point.get(k) is not None
            }
            if calibration is not None:
                values, errors, quality = calibration.for_setup(g.name, m.name)
                kwargs.update(values)
            key = (g.name, m.name, tuple(sorted(kwargs.items())))
            if key not in servings:  # each distinct setup built and checked once
                serving = setups.serving_config(power_model=spec.power_model, **kwargs)
                setups.check_setup(g, m, serving)
                servings[key] = {f"serving.{k}": float(v) for k, v in serving.items()}
        except SweepInputError as exc:
            note = (gpu_note + model_note) if isinstance(exc, UnknownNameError) else ""
            raise SweepInputError(f"{where}: {exc}{note}") from None
        if g.name not in gpu_rows:  # each entry's arrays once, not once per row
            gpu_rows[g.name] = {f"gpu.{k}": float(v) for k, v in g.arrays().items()}
        if m.name not in model_rows:
            model_rows[m.name] = {f"model.{k}": float(v) for k, v in m.arrays().items()}
        rows.append({**gpu_rows[g.name], **model_rows[m.name], **servings[key]})
        unc.append({f"gpu.{k}": _unc(g.specs.get(k)) for k in GPU_FIELDS})
        provenance[f"{g.name}/{m.name}"] = {
            **{k: vars(v) for k, v in g.specs.items()},
            **{k: vars(v) for k, v in m.arch.items()},
        }
        if calibration is not None:
            unc[-1].update({f"serving.{k}": _calibrated_unc(values[k], se) for k, se in errors.items()})
            provenance[f"{g.name}/{m.name}"].update(
                _calibrated_provenance(calibration, values, errors, quality)
            )
    keys = sorted(set().union(*rows))
    if any(set(r) != set(keys) for r in rows):
        raise SweepInputError(f"{where}: serving keys differ between profiles; give each key for all or none")
    theta = {k: np.array([r[k] for r in rows]) for k in keys}
    serving_elastic = ROOFLINE_ELASTICITY + (CALIBRATED_ELASTICITY if calibration is not None else ())
    elastic = tuple(k for k in (f"gpu.{n}" for n in ROOFLINE_ELASTICITY) if k in theta) + tuple(
        k for k in dict.fromkeys(f"serving.{n}" for n in serving_elastic) if k in theta
    )
    return ProfileTable(
        categorical={n: list(spec.axes[n]) for n in names},
        theta=theta,
        derive=RooflineDerive(spec.convention),
        elasticity_params=elastic,
        uncertainty={k: np.array([u.get(k, 0.0) for u in unc]) for k in elastic},
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
