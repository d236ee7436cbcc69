"""Labelled results: xarray Datasets with CF-1.11 metadata, written to NetCDF atomically."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import numpy as np
import xarray as xr

from sweep.io.files import is_stdout, resolve_target, write_atomic
from sweep.vocabulary import OPTIMUM_FLAGS, REFINEMENT_STATUS

# name -> (long_name, CF units). Counts and ratios are dimensionless ("1"); strings have no units.
VARIABLES = {
    "max_concurrency": ("maximum concurrent sequences n_max (KV-cache and slot limits)", "1"),
    "feasible": ("1 where at least one sequence fits, else 0", "1"),
    "exceeds_model_context": (
        "1 where the context window is beyond the model's maximum context (max_context_tokens), else 0",
        "1",
    ),
    "parameters": ("total parameters of the model (checkpoint count: embeddings, LM head, norms)", "1"),
    "active_parameters": ("parameters used per output token (MoE: only the top-k routed experts)", "1"),
    "concurrency": ("sequences in flight n = min(batch, n_max)", "1"),
    "iteration_time": ("decode iteration time tau", "s"),
    "tokens_per_second": ("decode output tokens per second of one instance", "s-1"),
    "gpu_power": ("power of one GPU", "W"),
    "instance_power": ("power of one instance (TP GPUs)", "W"),
    "tokens_per_watt": ("output tokens per joule (tokens per second per watt), active convention", "J-1"),
    "bound": ("roofline regime: 0 memory-bound, 1 compute-bound", "1"),
    "elasticity": ("elasticity d ln(target) / d ln(parameter), continuous relaxation", "1"),
    "uncertainty": ("relative half-width u of the parameter's uniform error (projected values)", "1"),
    "fleet_tokens_per_watt": ("fleet output tokens per joule, active convention", "J-1"),
    "fleet_power": ("fleet power (all pools)", "W"),
    "fleet_output_tokens_per_second": ("fleet output tokens per second", "s-1"),
    "cost_per_mtok": (
        "cost in US dollars per million output tokens: price_per_gpu_hour * GPUs / (3600 * tokens per second) * 1e6",
        "1",
    ),
    "ttft_p99": ("P99 time to first token, worst pool (queueing wait + mean prefill)", "s"),
    "meets_slo": ("1 where ttft_p99 <= ttft_p99_s (the P99 TTFT target), else 0", "1"),
    "instances": ("serving instances in the pool", "1"),
    "traffic_share": ("share of requests routed to the pool", "1"),
    "utilization": ("pool utilisation rho = lambda / (N mu)", "1"),
    "active_sequences": ("mean sequences in flight per instance n_act = rho n_max", "1"),
    "pool_power": ("pool power", "W"),
    "mean_service_time": ("mean request service time E[S] in the pool", "s"),
    "service_scv": ("squared coefficient of variation of the service time", "1"),
    "mean_output_tokens": ("mean output tokens per request in the pool", "1"),
    "pool_ttft_p99": ("P99 time to first token of the pool", "s"),
}
for _target, _units in (("tokens_per_watt", "J-1"), ("fleet_tokens_per_watt", "J-1")):
    VARIABLES[f"{_target}_rel_uncertainty"] = (f"relative standard deviation of {_target} (first order)", "1")
    VARIABLES[f"{_target}_low"] = (f"{_target} minus two standard deviations (first order)", _units)
    VARIABLES[f"{_target}_high"] = (f"{_target} plus two standard deviations (first order)", _units)

# the optimum of a fleet grid (sweep.optimizer)
VARIABLES.update(
    {
        "best_topology": (
            "routing topology of the largest fleet tokens/W meeting the SLO (none: no such point)",
            None,
        ),
        "best_b_short": ("short-pool window B_short of the optimum (NaN: homogeneous or none)", "1"),
        "best_gamma": (
            "FleetOpt compression factor of the optimum (pool routing: 1; NaN: homogeneous/none)",
            "1",
        ),
        "best_fleet_tokens_per_watt": (
            "largest fleet output tokens per joule meeting the P99 TTFT target",
            "J-1",
        ),
        "best_ttft_p99": ("worst-pool P99 time to first token at the optimum", "s"),
        "best_instances": ("instances per pool at the optimum", "1"),
        "homogeneous_fleet_tokens_per_watt": (
            "homogeneous fleet output tokens per joule (NaN: misses the SLO)",
            "J-1",
        ),
        "gain_over_homogeneous": ("best / homogeneous fleet tokens per watt", "1"),
        "feasible_points": ("number of (topology, b_short, gamma) grid points meeting the SLO", "1"),
        "optimum_flags": (
            (
                "what to distrust about the optimum: b_short or gamma at the smallest/largest value "
                "offered, gamma at max_compression, a pool with ~0 traffic or 0 instances"
            ),
            None,
        ),
        "refined_topology": (
            "topology after gradient refinement (the grid optimum's where it was kept)",
            None,
        ),
        "refined_b_short": ("B_short after gradient refinement (integer; exact model)", "1"),
        "refined_gamma": ("gamma after gradient refinement (exact model)", "1"),
        "refined_fleet_tokens_per_watt": (
            "fleet output tokens per joule at the refined point, exact model",
            "J-1",
        ),
        "refined_gain_over_homogeneous": ("refined / homogeneous fleet tokens per watt", "1"),
        "refined_ttft_p99": ("worst-pool P99 time to first token at the refined point, exact model", "s"),
        "refinement_status": (
            (
                "1: the exact model confirms the refined point beats the grid optimum; otherwise the "
                "grid optimum is kept and the value says why: 0 the exact model did not confirm the "
                "relaxed optimum; 2 the relaxed ascent stopped at a bound; 3 flat (no improving "
                "direction); -1 nothing to refine (no feasible routed point)"
            ),
            None,
        ),
        "continuous_b_short": ("B_short of the relaxed (continuous) local optimum", "1"),
        "continuous_gamma": ("gamma of the relaxed (continuous) local optimum", "1"),
        "relaxed_fleet_tokens_per_watt": (
            "fleet tokens per joule of the continuous relaxation at its optimum",
            "J-1",
        ),
    }
)

# CF flag variables: name -> (flag_values | flag_masks, {value: meaning})
FLAGS = {
    "bound": ("flag_values", {0: "memory_bound", 1: "compute_bound"}),
    "feasible": ("flag_values", {0: "infeasible", 1: "feasible"}),
    "exceeds_model_context": ("flag_values", {0: "within_model_context", 1: "exceeds_model_context"}),
    "meets_slo": ("flag_values", {0: "misses_slo", 1: "meets_slo"}),
    "refinement_status": ("flag_values", REFINEMENT_STATUS),
    "optimum_flags": ("flag_masks", {v: k for k, v in OPTIMUM_FLAGS.items()}),
}

# coordinate units; long names come from the axis descriptions in sweep.grid.spec.AXES
COORD_UNITS = {
    "context": "1",
    "batch": "1",
    "mean_length_fraction": "1",
    "load": "1",
    "price_per_gpu_hour": "1",
    "tp": "1",
    "gpu_memory_utilization": "1",
    "kv_block_tokens": "1",
    "reserve_bytes": "byte",
    "prefill_chunk_tokens": "1",
    "moe_dispatch_overhead_s": "s",
    "b_short": "1",
    "gamma": "1",
    "long_context": "1",
    "arrival_rate": "s-1",
    "ttft_p99_s": "s",
    "rho_max": "1",
    "output_share": "1",
}
EXTRA_COORDS = {
    "batch": 'requested sequences in flight; 0 means "max" (n = floor(load * n_max))',
    "pool": "routing pool: short (context window b_short) or long (long_context)",
    "parameter": "parameter theta of the elasticity",
    "quantile": "probability level of the Monte Carlo quantile",
    "sample": "index of the joint draw of the uncertain parameters",
    "uncertain_parameter": "uncertain parameter (catalog entry and field)",
    "draw": "multiplier of the parameter's nominal value in each joint draw",
}


MONTE_CARLO_STATISTICS = {
    "mean": "Monte Carlo mean over the joint draws",
    "std": "Monte Carlo standard deviation over the joint draws",
    "quantile": "Monte Carlo quantiles over the joint draws",
    "samples": "value under each joint draw",
}


def annotate(ds: xr.Dataset) -> xr.Dataset:
    """Add `long_name` (and, for numbers, CF `units`) to every known variable and coordinate."""
    from sweep.grid.spec import AXES

    for name in ds.variables:
        base, _, stat = str(name).rpartition("_")
        if name in VARIABLES:
            long_name, units = VARIABLES[name]
        elif base in VARIABLES and stat in MONTE_CARLO_STATISTICS:
            long_name, units = f"{VARIABLES[base][0]}: {MONTE_CARLO_STATISTICS[stat]}", VARIABLES[base][1]
        elif name in EXTRA_COORDS or name in AXES:
            long_name, units = EXTRA_COORDS.get(name) or AXES[name].doc, COORD_UNITS.get(name)
        else:
            continue
        ds[name].attrs["long_name"] = long_name
        if units is not None and ds[name].dtype.kind in "iuf":
            ds[name].attrs["units"] = units
    for name, (kind, flags) in FLAGS.items():
        if name in ds:
            ds[name].attrs.update(
                {kind: np.array(list(flags), dtype=np.int8), "flag_meanings": " ".join(flags.values())}
            )
    return ds


def history_line(command: str) -> str:
    """CF `history` entry: ISO timestamp and the command that made the data."""
    stamp = datetime.now(UTC).replace(microsecond=0).isoformat()
    return f"{stamp}: {command}"


def global_attrs(*, title, convention, spec, command, version, extra=None) -> dict:
    attrs = {
        "Conventions": "CF-1.11",
        "title": title,
        "history": history_line(command),
        "source": f"sweep {version}",
        "convention": convention,
        "grid_spec": json.dumps(spec, sort_keys=True, default=str),
    }
    attrs.update(extra or {})
    return attrs


def check_writable(path) -> None:
    """Fail early (before any computing) if `path` cannot be written (see `sweep.io.files.resolve_target`);
    `-` passes: text outputs write it to standard output (`sweep.io.files.write_text`), the others refuse it."""
    if not is_stdout(path):
        resolve_target(path)


def grid_inputs(spec) -> list:
    """(path, description) of every file a parsed grid reads: the grid file and
    `sweep.grid.tables.described_inputs`; an output must replace none of them
    (`sweep.io.files.check_not_an_input`)."""
    from sweep.grid.tables import described_inputs

    grid = [(spec.where, f"the grid file {spec.where}")] if spec.where != "<dict>" else []
    return grid + described_inputs(spec)


def write_netcdf(ds: xr.Dataset, path) -> None:
    """Write `ds` to `path` atomically (temporary file in the same folder, then rename)."""
    write_atomic(path, lambda tmp: ds.to_netcdf(tmp, engine="netcdf4", format="NETCDF4"))
