"""Public entry point: `run(spec)` evaluates a grid and returns a labelled xarray Dataset."""

from __future__ import annotations

import dataclasses
import math
import os
import warnings

import jax
import numpy as np
import xarray as xr

from sweep.catalogs.provenance import provenance_fields
from sweep.errors import SweepInputError, SweepWarning
from sweep.grid import spec as _grid
from sweep.grid.engine import ProfileTable, grid_layout, run_grid
from sweep.grid.evaluators import FleetEvaluator, InstanceEvaluator
from sweep.grid.tables import profile_table
from sweep.io import progress as _progress
from sweep.io.memory import check_fits
from sweep.io.output import annotate, check_writable, global_attrs, write_netcdf
from sweep.io.progress import as_progress
from sweep.io.stream import (
    STREAMING,
    Stream,
    check_zarr_target,
    open_result,
    output_format,
    run_key,
    write_zarr,
)
from sweep.io.tabular import check_table_format, is_csv, write_csv
from sweep.uncertainty.draws import parameters
from sweep.uncertainty.montecarlo import describe, monte_carlo
from sweep.version import __version__
from sweep.vocabulary import POOLS, TOPOLOGIES

RELAXATION_NOTE = (
    "elasticities are derivatives of the continuous relaxation of the model: every floor and "
    "ceiling (KV blocks per sequence, sequences per budget, int(n) in the power curve, instance "
    "counts) is replaced by its real-valued argument; values are exact (integer effects kept)"
)
MONTE_CARLO_NOTE = (
    "monte_carlo: every grid point evaluated under the same {n} joint draws of {p} uncertain parameters "
    "(scipy.stats.qmc {sampler}, seed {seed}); <var>_mean, <var>_std and <var>_quantile over the draws "
    "(NaN draws, where no sequence fits, are left out); docs/uncertainty.md"
)
UNCERTAINTY_NOTE = (
    "first-order propagation: each parameter with a catalog uncertainty u (relative half-width) "
    "has an independent uniform error on [-u, u] (variance u^2/3); rel_uncertainty = "
    "sqrt(sum_i (elasticity_i * u_i)^2 / 3) is the relative standard deviation of "
    "tokens_per_watt (first order, of ln tokens_per_watt); low/high = value * exp(-/+ 2 * rel_uncertainty), "
    "positive for any rel_uncertainty and value * (1 -/+ 2 * rel_uncertainty) to first order"
)


def as_spec(spec) -> _grid.GridSpec:
    """Accept a GridSpec, a dict or a path to a TOML grid file."""
    if isinstance(spec, _grid.GridSpec):
        return spec
    if isinstance(spec, dict):
        return _grid.parse(spec)
    if isinstance(spec, (str, os.PathLike)):
        return _grid.load(spec)
    raise SweepInputError(f"spec must be a path, a dict or a GridSpec, got {type(spec).__name__}")


def check_precision() -> str:
    """The precision note recorded in outputs; an error if JAX's 64-bit mode was turned off."""
    if not jax.config.jax_enable_x64:
        raise SweepInputError(
            "JAX's 64-bit mode (jax_enable_x64) is off, but sweep computes in float64; "
            "turn it back on with jax.config.update('jax_enable_x64', True)"
        )
    return "float64 compute (jax_enable_x64)"


def check_arguments(*, out=None, **flags) -> None:
    """`sweep.run`'s keyword types, checked as the grid-file keys are: an output path or None, and flags that
    are True, False (or None where that means "as the spec says"); a one-line `SweepInputError` otherwise."""
    if out is not None and not isinstance(out, (str, os.PathLike)):
        raise SweepInputError(
            f"sweep.run: out: got {out!r} ({type(out).__name__}); allowed: a path (str or os.PathLike) or None"
        )
    for name, value in flags.items():
        if value is not None and not isinstance(value, (bool, np.bool_)):
            raise SweepInputError(
                f"sweep.run: {name}: got {value!r} ({type(value).__name__}); allowed: True, False or None"
            )


def run(
    spec,
    out=None,
    *,
    elasticities: bool | None = None,
    calibration: str | None = None,
    uncertainty=None,
    samples: int | None = None,
    seed: int | None = None,
    progress=None,
    resume: bool = False,
    compression: int = 0,
    max_memory=None,
    distributed: bool = False,
    command: str | None = None,
) -> xr.Dataset:
    """Evaluate every point of a grid and return the results as a labelled `xarray.Dataset`.

    Args:
        spec: a grid file path (TOML), a dict of the same structure, or a parsed `GridSpec`; the
            docs/grids.md lists every key.
        out: optional output path: `.zarr` (a Zarr store), `.csv` (a tidy table) or any other name
            (NetCDF-4). Without uncertainty analysis, NetCDF and Zarr outputs are streamed block by
            block to `<out>.partial`, renamed onto `out` when complete, and the result is returned
            opened lazily from the file (docs/scaling.md); otherwise the in-memory result is written
            atomically (temporary file, then rename).
        elasticities: True/False overrides the spec's `elasticities` key (None: as the spec says).
        calibration: a calibration file or built-in name ("mlenergy-v3") applied to a physical
            first-principles grid; overrides the spec's `calibration` key (docs/calibration.md §5).
        uncertainty: True or "first_order" (the first-order band), "monte_carlo", a table as the
            grid's `[uncertainty]` (docs/uncertainty.md), or False; overrides the spec's key.
        samples, seed: Monte Carlo draws and their seed (override the spec's).
        progress: True (a tqdm bar on stderr through set-up, compile, blocks and write, for runs over
            2 s), False or None (none), or a callable `progress(done_blocks, total_blocks, elapsed_s)`.
        resume: finish the interrupted streamed run of the same grid and `out` (its `<out>.partial`):
            only the missing blocks are computed; the data equal an uninterrupted run bit for bit.
        compression: 0 (none, default) or 1-9: zlib level for a streamed NetCDF, zstd level for Zarr.
        max_memory: the memory budget of an in-memory run, bytes or text such as "8GiB" (default
            $SWEEP_MAX_MEMORY, else half of RAM); a run over it stops before computing.
        distributed: this process is one of a `jax.distributed` job (initialized by the caller): it
            computes blocks p, p + P, … of the grid into the shared Zarr store `out`.
        command: the text recorded in the `history` attribute (default: this call).

    Returns a Dataset with one variable per output (docs/output.md), CF metadata,
    the spec and precision in its attributes, the provenance of every profile value as coordinates
    (`provenance`, `provenance_index`; summary attribute `profile_provenance`). Raises `SweepInputError` (a
    `ValueError`) with a one-line message on bad input.

    >>> ds = sweep.run({"axes": {"gpu": ["H100"], "model": ["llama-3.1-70b"], "context": [8192]}})
    >>> int(ds.max_concurrency.sel(gpu="H100", model="llama-3.1-70b", context=8192))
    128
    """
    check_arguments(out=out, elasticities=elasticities, resume=resume, distributed=distributed)
    precision = check_precision()
    spec = as_spec(spec)
    if calibration is not None:
        spec = _grid.parse({**spec.raw, "calibration": str(calibration)}, spec.where)
    if uncertainty is not None or samples is not None or seed is not None:
        spec = _grid.parse(
            {**spec.raw, "uncertainty": uncertainty_key(spec.raw, uncertainty, samples, seed)}, spec.where
        )
    if elasticities is not None:
        first_order = spec.uncertainty is not None and spec.uncertainty.method == "first_order"
        spec = dataclasses.replace(spec, elasticities=bool(elasticities) or first_order)
    streamed = out is not None and spec.uncertainty is None and not is_csv(out)
    if out is not None:
        check_output(out, spec, streamed)
    if (resume or distributed) and not streamed:
        raise SweepInputError(
            f"{'resume' if resume else 'distributed'}: needs a streamed output: an output path (-o out.nc or "
            "-o out.zarr) and no uncertainty analysis"
        )
    show = as_progress(progress)
    try:
        return _run(
            spec, out, streamed, show, precision, resume, compression, max_memory, distributed, command
        )
    finally:
        _progress.close(show)


def _run(spec, out, streamed, show, precision, resume, compression, max_memory, distributed, command):
    table, point_axes, point_params, model = grid_parts(spec)
    unknown = sorted(set(spec.outputs) - set(model.outputs))
    if unknown:
        raise SweepInputError(
            f"{spec.where}: outputs: unknown output(s) {unknown}; allowed: {', '.join(model.outputs)}"
        )
    keep = tuple(k for k in model.outputs if k in spec.outputs or k == model.target) if spec.outputs else None
    options = dict(dtype=spec.dtype, chunk_points=spec.chunk_points)
    axes, extras = point_inputs(spec, point_axes)
    layout = grid_layout(table, axes, model, keep=keep, elasticities=spec.elasticities, **options)
    extra_attrs = fleet_length_attrs(spec)

    def attrs(extra):
        return run_attrs(spec, table, precision, command, {**extra_attrs, **extra})

    if streamed:
        grid = (table, spec, point_axes, point_params, model, axes, extras, keep)
        return run_streamed(
            grid, layout, out, attrs, show, resume=resume, compression=compression, distributed=distributed
        )
    unc = spec.uncertainty
    check_fits(layout.nbytes() + monte_carlo_bytes(layout, spec), max_memory)
    _progress.stage(show, "compile", math.prod(layout.dims))
    # instance grids: the results include the model's `pre` pass (max_concurrency, feasible on (profile, context))
    results = run_grid(
        table,
        axes,
        point_params,
        model,
        elasticities=spec.elasticities,
        keep=keep,
        extras=extras,
        progress=show,
        **options,
    )
    if spec.elasticities:
        results["elasticity"][:, undefined_elasticity(results[model.target], results.get("feasible"))] = (
            np.nan
        )
    ds = to_dataset(table, spec, point_axes, results)
    if unc is not None and unc.method == "first_order":
        add_uncertainty(ds, table, first_order_widths(table, unc, spec.where))
        extra_attrs["uncertainty_method"] = UNCERTAINTY_NOTE
    elif unc is not None:
        mc, drawn, draws = monte_carlo(
            table,
            axes,
            point_params,
            model,
            unc,
            asked=spec.outputs,
            extras=extras,
            chunk_points=spec.chunk_points,
            where=spec.where,
            progress=show,
        )
        add_monte_carlo(ds, table, point_axes, mc, unc, drawn, draws)
        extra_attrs["uncertainty_method"] = MONTE_CARLO_NOTE.format(
            n=unc.samples, sampler=unc.sampler, seed=unc.seed, p=len(drawn)
        )
        extra_attrs["uncertainty_parameters"] = describe(drawn, unc)
    ds.attrs = attrs({})
    if out is not None:
        _progress.stage(show, "write")
        write_result(ds, out)
    return ds


def fleet_length_attrs(spec) -> dict:
    """The `fleet_lengths` attribute of a fleet grid: how request lengths are routed (none for instances)."""
    if spec.mode != "fleet":
        return {}
    return {
        "fleet_lengths": (
            "planner (paper convention: the planner's routing of the long pool's first CDF segment and its count of "
            "compressed requests' output tokens)"
            if spec.convention == "paper"
            else "exact (requests routed by (lo, hi], compressed requests generate the clipped output)"
        )
    }


def run_attrs(spec, table, precision, command, extra: dict) -> dict:
    """The global attributes of a run's Dataset: spec, command, version, precision, provenance, `extra`."""
    return global_attrs(
        title=spec.title,
        convention=spec.convention,
        spec=spec.raw,
        command=command or f"sweep.run({spec.where!r})",
        version=__version__,
        extra={
            "profile_kind": spec.profile,
            "precision": f"{precision}, {spec.dtype} storage",
            **provenance_fields(table)[0],
            **{k: v for k, v in spec.params.items() if v is not None},
            **({"elasticity_method": RELAXATION_NOTE} if spec.elasticities else {}),
            **({"calibration": spec.calibration} if spec.calibration else {}),
            **extra,
        },
    )


def check_output(out, spec=None, streamed: bool = False) -> None:
    """Fail early (before computing) if `out` names a format sweep does not write, cannot be written, is
    standard output (`-`), or would replace one of the grid's inputs (the grid file, a file it names;
    `streamed`: also `<out>.partial`)."""
    from sweep.io.files import check_not_an_input, is_stdout
    from sweep.io.output import grid_inputs

    if is_stdout(out):
        raise SweepInputError(
            "-: out: sweep.run writes NetCDF, Zarr or CSV files, not standard output; allowed: a file name"
        )
    check_table_format(out)
    if spec is not None:
        check_not_an_input(out, grid_inputs(spec), key="out", partial=streamed)
    if not is_csv(out) and output_format(out) == "zarr":
        check_zarr_target(out)
    else:
        check_writable(out)


def write_result(ds: xr.Dataset, out) -> None:
    """Write an in-memory result: CSV (a tidy table), Zarr (a directory) or NetCDF, by extension; atomically."""
    if is_csv(out):
        write_csv(ds, out)
    elif output_format(out) == "zarr":
        write_zarr(ds, out)
    else:
        write_netcdf(ds, out)


def monte_carlo_bytes(layout, spec) -> int:
    """Bytes of the Monte Carlo statistics (mean, std, quantiles; the draws if kept) of the asked outputs."""
    unc = spec.uncertainty
    if unc is None or unc.method == "first_order":
        return 0
    per_point = 2 + len(unc.quantiles) + (unc.samples if unc.keep_samples else 0)
    return 8 * per_point * math.prod(layout.dims) * max(1, len(spec.outputs or ()))


class _Sink:
    """Where `run_grid` hands the blocks of a streamed run: masked elasticities, then the stream."""

    def __init__(self, stream, layout, target: str, cat_shape: tuple):
        self.stream, self.layout, self.target, self.cat_shape = stream, layout, target, cat_shape
        self.pre_results = {}

    def pre(self, results):
        self.pre_results = results

    def block(self, block_id, where, values):
        if "elasticity" in values:
            feasible = self.pre_results.get("feasible")  # on (profile dims, context): this block's part
            if feasible is not None:
                feasible = feasible.reshape(self.cat_shape + (-1,))[where[: len(self.cat_shape) + 1]]
            bad = undefined_elasticity(values[self.target], feasible)
            values["elasticity"] = np.where(bad, np.nan, values["elasticity"])  # a block is read-only
        lead = {k: (slice(None),) * len(v[0]) for k, v in self.layout.outputs.items()}
        self.stream.write(block_id, {k: (lead[k] + where, v) for k, v in values.items()})


def run_streamed(grid, layout, out, attrs, show, *, resume, compression, distributed) -> xr.Dataset:
    """Stream the grid's blocks to `out` (sweep.io.stream); return the finished file opened lazily.

    With `distributed`, this is one of jax.process_count() processes (jax.distributed): process p computes
    the blocks p, p + P, …; process 0 creates the partial and finishes it (docs/scaling.md)."""
    from sweep import distributed as _dist

    table, spec, point_axes, point_params, model, axes, extras, keep = grid
    process, processes = _dist.share() if distributed else (0, 1)
    if processes > 1 and output_format(out) != "zarr":
        raise SweepInputError(f"{out}: a distributed run writes Zarr (-o out.zarr); NetCDF has one writer")
    cat_shape = tuple(len(v) for v in table.categorical.values())
    n_rows = math.prod(cat_shape)
    points = tuple(len(v) for v in axes.values())
    fake = {
        k: np.broadcast_to(np.zeros((), dt), lead + (n_rows,) + points + trail)
        for k, (lead, trail, dt) in layout.outputs.items()
    }
    fake.update({k: np.zeros((n_rows, points[0]), dt) for k, dt in layout.pre.items()})
    level = int(compression or 0)
    codec = ("zlib" if output_format(out) == "netcdf" else "zstd") if level else "none"
    skeleton = to_dataset(table, spec, point_axes, fake)
    skeleton.attrs = attrs({"compression": f"{codec} level {level}" if level else "none"})
    chunks = layout.plan.lengths
    streamed = {
        k: (skeleton[k].dims, lead + chunks + trail, dt, dict(skeleton[k].attrs))
        for k, (lead, trail, dt) in layout.outputs.items()
    }
    skeleton = skeleton.drop_vars(list(streamed))
    from sweep.grid.tables import input_files
    from sweep.io.stream import file_digests

    inputs = file_digests(input_files(spec))  # an edited catalog, calibration or CDF: no resume
    key = run_key(
        spec.raw, spec.dtype, layout.dims, chunks, sorted(layout.outputs), level, __version__, inputs
    )
    stream = Stream(out, key, layout.plan.n_blocks, process=process, compression=level, inputs=inputs)
    if process == 0:
        done = stream.recorded() if resume else None
        if done is None or not stream.reopen():
            if not resume and os.path.exists(stream.partial):
                warnings.warn(
                    f"{stream.partial}: replacing the partial output of an earlier run (--resume finishes it)",
                    SweepWarning,
                    stacklevel=2,
                )
            stream.create(skeleton, streamed)
        stream.close()
    _dist.barrier("sweep-created", processes)
    stream.done = stream.recorded() or set()
    stream.reopen()
    stream.start_log()
    STREAMING[stream.target] = stream
    _progress.stage(show, "compile", math.prod(layout.dims))
    try:
        pre = run_grid(
            table,
            axes,
            point_params,
            model,
            elasticities="elasticity" in layout.outputs,
            keep=keep,
            extras=extras,
            progress=show,
            dtype=spec.dtype,
            chunk_points=spec.chunk_points,
            sink=_Sink(stream, layout, model.target, cat_shape),
            wanted=lambda i: i % processes == process and i not in stream.done,
        )
        stream.close()
        _dist.barrier("sweep-blocks", processes)
        if process == 0:
            _progress.stage(show, "write")
            stream.reopen()
            stream.finish({k: v.reshape(cat_shape + v.shape[1:]) for k, v in pre.items()})
        _dist.barrier("sweep-finished", processes)
    finally:
        stream.close()
        STREAMING.pop(stream.target, None)
    return open_result(out)


def undefined_elasticity(y, feasible=None):
    """Where the elasticities of the exact target y are NaN (of a whole grid or a block): ln y undefined
    (0 or not finite), or no sequence fits (`feasible` == 0, on the leading (profile, context) dims of y),
    where the relaxed model differentiated has neither n_max = 0 nor floor(load·n_max) = 0."""
    bad = ~np.isfinite(y) | (y == 0)
    if feasible is not None:
        infeasible = feasible == 0
        bad |= np.expand_dims(infeasible, tuple(range(infeasible.ndim, y.ndim)))
    return bad


def to_dataset(table: ProfileTable, spec: _grid.GridSpec, point_axes: list, results: dict) -> xr.Dataset:
    """Label the engine's arrays: profile dims first, then the point axes (then `pool`); the model
    sizes as coordinates on `model`, the profile table's provenance as coordinates (`provenance_fields`);
    a warning per model whose maximum context the grid exceeds."""
    from sweep.catalogs.provenance import provenance_fields
    from sweep.grid.evaluators import ContextEvaluator  # its outputs live on (profile dims, context)

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
        dims = cat_names + (["context"] if k in ContextEvaluator.outputs else point_axes)
        dims += ["pool"] * (arr.ndim - len(dims))
        data_vars[k] = (dims, arr)
    if "pool" in {d for dims, _ in data_vars.values() for d in dims}:
        coords["pool"] = np.asarray(POOLS, dtype=object)
    if "elasticity" in results:
        e = results["elasticity"]
        dims = ["parameter"] + cat_names + point_axes
        data_vars["elasticity"] = (dims, e.reshape(e.shape[:1] + cat_shape + e.shape[2:]))
        coords["parameter"] = np.asarray([k.split(".", 1)[-1] for k in table.elasticity_params], dtype=object)
    if "model" in cat_names:
        coords.update(model_size_coords(table, spec))
    coords.update(provenance_fields(table)[1])  # the full provenance record, deduplicated (coordinates)
    if "exceeds_model_context" in results:
        warn_beyond_model_context(table, spec)
    return annotate(xr.Dataset(data_vars, coords=coords))


def grid_parts(spec: _grid.GridSpec) -> tuple:
    """The grid's profile table, point-axis names, scalar point parameters and evaluator."""
    table = profile_table(spec)
    point_axes = [n for n in spec.axes if _grid.AXES[n].group != "profile"]
    point_params = {k: v for k, v in spec.params.items() if _grid.AXES[k].group != "profile"}
    model = InstanceEvaluator(spec.convention) if spec.mode == "instance" else FleetEvaluator(spec.convention)
    return table, point_axes, point_params, model


def point_inputs(spec: _grid.GridSpec, point_axes: list) -> tuple:
    """The point axes as numeric arrays (workloads and topologies as codes) and the extras (workload tables)."""
    if spec.mode == "instance":
        return {n: np.asarray(spec.axes[n], dtype=np.float64) for n in point_axes}, ()
    from sweep.fleet.workload import load_workload, stack_workloads

    loaded = []
    for name in spec.axes["workload"]:
        try:
            loaded.append(load_workload(spec.workload_source(name)))
        except SweepInputError as exc:
            raise SweepInputError(f"{spec.where}: axes.workload: {exc}") from None
    codes = {
        "workload": np.arange(len(loaded)),
        "topology": np.array([TOPOLOGIES[t] for t in spec.axes["topology"]]),
    }
    axes = {n: codes[n] if n in codes else np.asarray(spec.axes[n], dtype=np.float64) for n in point_axes}
    stacked = stack_workloads(loaded)
    return axes, (np.asarray(stacked.lengths_tokens), np.asarray(stacked.cum_fraction))


def sensitivity(
    spec, method: str = "sobol", *, samples: int | None = None, seed: int = 0, out=None, max_memory=None
) -> xr.Dataset:
    """Global sensitivity indices of the grid's target output (tokens_per_watt, or fleet_tokens_per_watt)
    at every grid point, to the uncertain parameters of its `[uncertainty]` table (default: every
    projected catalog value); see docs/uncertainty.md §4.

    Args:
        spec: a grid file, dict or `GridSpec`.
        method: "sobol" (S1, ST with bootstrap half-widths), "morris" (mu_star, sigma), "dgsm" (nu and
            the bound on ST from JAX gradients) or "oat" (±20 % one-at-a-time tornado).
        samples: base samples N, an integer >= 2 (default: sobol 1024, morris 64, dgsm 1024; Sobol' evaluates
            N·(d + 2) draws, with N rounded up to a power of 2 and a warning; Morris N trajectories).
        seed: the design's, an integer 0 <= seed < 2^63.
        out: optional NetCDF path.
        max_memory: the memory budget of the design and its outputs, bytes or text such as "8GiB" (default
            $SWEEP_MAX_MEMORY, else half of RAM, as `sweep.run`); a design over it stops before computing.

    Indices are NaN at grid points where a draw has no finite output (no sequence fits); the variable
    `feasible_fraction` (sobol, morris, dgsm) is the fraction of the draws where one fits; warnings count
    those points and the Sobol' indices outside [0, 1] (docs/uncertainty.md §4).

    >>> grid = {"profile": "roofline", "axes": {"gpu": ["B200"], "model": ["llama-3.1-8b"], "context": [8192]}}
    >>> s = sweep.sensitivity(grid, method="oat")
    >>> str(s.swing.idxmax("parameter").item())  # ±20 % TDP moves tokens per joule the most here
    'B200.tdp_w'
    """
    from sweep.uncertainty import sensitivity as _sens

    if method not in _sens.METHODS:
        raise SweepInputError(f"--method '{method}': allowed values: {', '.join(_sens.METHODS)}")
    _sens.check_samples(method, samples)  # before the grid's tables are built
    seed = _sens.check_seed(seed)
    spec = as_spec(spec)
    if out is not None:
        check_writable(out)
    table, point_axes, point_params, model = grid_parts(spec)
    axes, extras = point_inputs(spec, point_axes)
    result = _sens.sensitivity(
        table,
        axes,
        point_params,
        model,
        spec.uncertainty,
        method=method,
        samples=samples,
        seed=seed,
        extras=extras,
        chunk_points=spec.chunk_points,
        where=spec.where,
        max_memory=max_memory,
    )
    ds = _sens.to_dataset(
        result,
        table.categorical,
        point_axes,
        spec.axes,
        method=method,
        target=model.target,
        samples=result["samples"],  # as used: the default, or Sobol's rounded up to a power of 2
        seed=seed,
    )
    ds.attrs["evaluations"] = result["evaluations"]
    if out is not None:
        write_netcdf(ds, out)
    return ds


def uncertainty_key(raw: dict, uncertainty, samples, seed):
    """The grid's `uncertainty` value with the `sweep.run` / command-line overrides applied.

    `samples` and `seed` are the Monte Carlo draws': given without an uncertainty method (neither the
    `uncertainty` argument nor the grid's key), they are refused rather than switching Monte Carlo on
    (and streaming off) silently; with the first-order band, which has no draws, a warning says they
    are ignored. Their values are checked with the grid's `[uncertainty]` table."""
    from sweep.grid.uncertainty_options import valid_count, valid_seed

    given = raw.get("uncertainty")
    if uncertainty is None:
        uncertainty = given
    draws = {name: value for name, value in (("samples", samples), ("seed", seed)) if value is not None}
    if uncertainty is None or uncertainty is False:
        if draws:
            raise SweepInputError(
                f"sweep.run: {' and '.join(draws)} {'need' if len(draws) > 1 else 'needs'} uncertainty: "
                f"{', '.join(f'{k}={v!r}' for k, v in draws.items())} given but no uncertainty method; allowed: "
                "uncertainty='monte_carlo' (--uncertainty) or an [uncertainty] table in the grid file"
            )
        return uncertainty
    if uncertainty is True:
        uncertainty = "first_order"
    if isinstance(uncertainty, str):
        base = dict(given) if isinstance(given, dict) else {}
        uncertainty = {**base, "method": uncertainty}
    if isinstance(uncertainty, dict):  # merged into the grid's own table (its parameters, correlation)
        uncertainty = {**(given if isinstance(given, dict) else {}), **uncertainty}
        if draws and uncertainty.get("method", "monte_carlo") == "first_order":
            warnings.warn(
                f"sweep.run: {' and '.join(draws)} ignored: the first-order band has no draws "
                "(they are Monte Carlo's: uncertainty='monte_carlo')",
                SweepWarning,
                stacklevel=3,
            )
        if samples is not None:  # an integer as an int (the grid's record); anything else the table refuses
            uncertainty["samples"] = samples if valid_count(samples, 2) is None else valid_count(samples, 2)
        if seed is not None:
            uncertainty["seed"] = seed if valid_seed(seed) is None else valid_seed(seed)
    return uncertainty


def first_order_widths(table: ProfileTable, options, where: str) -> dict:
    """θ key -> (K,) uniform-equivalent half-width √3·σ of each row's parameter (default: the catalog's)."""
    if not options.parameters:
        return table.uncertainty
    k_rows = len(next(iter(table.theta.values())))
    widths = {}
    for p in parameters(table, options, where):
        widths.setdefault(p.key, np.zeros(k_rows))[list(p.rows)] = np.sqrt(3.0) * p.sigma
    return widths


def add_monte_carlo(
    ds: xr.Dataset, table: ProfileTable, point_axes: list, results: dict, options, drawn, multipliers
) -> None:
    """Label the Monte Carlo statistics: profile dims and point axes, after `quantile` or `sample`."""
    cat_names = list(table.categorical)
    cat_shape = tuple(len(v) for v in table.categorical.values())
    for k, arr in results.items():
        lead = {"quantile": ["quantile"], "samples": ["sample"]}.get(k.rpartition("_")[2], [])
        shape = arr.shape[: len(lead)] + cat_shape + arr.shape[len(lead) + 1 :]
        ds[k] = (lead + cat_names + point_axes, arr.reshape(shape))
    ds.coords["quantile"] = np.asarray(options.quantiles)
    if options.keep_samples:
        ds.coords["sample"] = np.arange(options.samples)
        ds.coords["uncertain_parameter"] = np.asarray([p.name for p in drawn], dtype=object)
        ds["draw"] = (("sample", "uncertain_parameter"), multipliers[:, : len(drawn)])
    annotate(ds)


def add_uncertainty(ds: xr.Dataset, table: ProfileTable, widths: dict | None = None) -> None:
    """tokens/W relative uncertainty and a ±2σ band from the elasticities (see UNCERTAINTY_NOTE).

    The elasticities are d ln y / d ln θ, so σ = sqrt(Σ (e_i·u_i)²/3) is the first-order standard deviation
    of ln y, and the band is taken in log space: low/high = y·exp(∓2σ). It stays positive however large σ is
    (the linear y·(1 ∓ 2σ) went negative beyond σ = 0.5) and equals y·(1 ∓ 2σ) + O(σ²)."""
    target = "fleet_tokens_per_watt" if "fleet_tokens_per_watt" in ds else "tokens_per_watt"
    cat_shape = tuple(len(v) for v in table.categorical.values())
    widths = table.uncertainty if widths is None else widths
    u = np.stack(
        [widths.get(k, np.zeros(len(next(iter(table.theta.values()))))) for k in table.elasticity_params]
    ).reshape((-1,) + cat_shape)
    u = xr.DataArray(u, dims=["parameter"] + list(table.categorical), coords={"parameter": ds.parameter})
    rel = np.sqrt(((ds.elasticity * u) ** 2).sum("parameter", skipna=False) / 3.0)
    ds[f"{target}_rel_uncertainty"] = rel
    ds[f"{target}_low"] = ds[target] * np.exp(-2 * rel)
    ds[f"{target}_high"] = ds[target] * np.exp(2 * rel)
    ds["uncertainty"] = u
    annotate(ds)


# ---------------------------------------------------------------------------------------------
# Model facts: sizes (coordinates on `model`) and the maximum context (warning, flag)


def _first_row_of_each_model(table: ProfileTable) -> np.ndarray:
    """Index of the first profile-table row of each `model` label (rows are C order over the profile dims)."""
    names = list(table.categorical)
    shape = tuple(len(v) for v in table.categorical.values())
    rows = np.moveaxis(np.arange(int(np.prod(shape))).reshape(shape), names.index("model"), 0)
    return rows.reshape(shape[names.index("model")], -1)[:, 0]


def model_size_coords(table: ProfileTable, spec: _grid.GridSpec) -> dict:
    """`parameters` and `active_parameters` of each model label (coordinates on `model`): the
    checkpoint's counts (physical counting rule, docs/models.md §2; the same in both conventions), from
    the table's model θ (first-principles grids) or the model catalog (calibrated grids; NaN if unknown)."""
    import warnings

    from sweep.errors import SweepWarning
    from sweep.grid.tables import grid_models
    from sweep.physics.architecture import ARCH_FIELDS

    models = list(table.categorical["model"])
    if "model.n_layers" in table.theta:
        rows = _first_row_of_each_model(table)
        archs = [{k: float(table.theta[f"model.{k}"][r]) for k in ARCH_FIELDS} for r in rows]
    else:
        with warnings.catch_warnings():  # a skipped user catalog was reported when the table was built
            warnings.simplefilter("ignore", SweepWarning)
            known = grid_models(spec, models)
        archs = [
            {k: float(known[m].arrays()[k]) for k in ARCH_FIELDS} if m in known else None for m in models
        ]
    counts = [_parameter_counts()(a) if a is not None else None for a in archs]
    total = np.array([float(c["total"]) if c else np.nan for c in counts], dtype=np.float64)
    active = np.array([float(c["active"]) if c else np.nan for c in counts], dtype=np.float64)
    return {"parameters": ("model", total), "active_parameters": ("model", active)}


_COUNTS_KERNEL: list = []  # the jitted parameter counter, made on first use


def _parameter_counts():
    """`param_counts(arch, "physical")` (total, active) of one model's scalars, compiled once per process:
    eager JAX would compile each of its operations again on every run's first call."""
    from sweep.physics.architecture import param_counts

    if not _COUNTS_KERNEL:
        keep = ("total", "active")
        _COUNTS_KERNEL.append(jax.jit(lambda arch: {k: param_counts(arch, "physical")[k] for k in keep}))
    return _COUNTS_KERNEL[0]


def warn_beyond_model_context(table: ProfileTable, spec: _grid.GridSpec) -> None:
    """One `SweepWarning` line per model with contexts beyond its maximum: the `max_context_tokens` θ entry
    of the profile table against the context axis, by the rule of the engine's `exceeds_model_context` flag
    (`sweep.physics.concurrency.exceeds_model_context`, here on NumPy arrays)."""
    import warnings
    from types import SimpleNamespace

    from sweep.errors import SweepWarning
    from sweep.physics.concurrency import exceeds_model_context

    limit = table.theta.get("model.max_context_tokens", table.theta.get("max_context_tokens"))
    if limit is None or "context" not in spec.axes or "model" not in table.categorical:
        return
    limits = np.asarray(limit, dtype=np.float64)[_first_row_of_each_model(table)]  # a model's fact
    contexts = np.asarray(spec.axes["context"])
    beyond = exceeds_model_context(SimpleNamespace(max_context_tokens=limits[:, None]), contexts[None, :])
    then = (
        "outputs are NaN there (physical convention)"
        if spec.convention == "physical"
        else "values kept (paper convention)"
    )
    for model, flag, most in zip(table.categorical["model"], np.asarray(beyond), limits):
        if flag.any():
            over = ", ".join(str(c) for c in contexts[flag][:6]) + (", …" if flag.sum() > 6 else "")
            warnings.warn(
                f"{spec.where}: model {model!r} supports at most {int(most)} context tokens "
                f"(max_context_tokens); context {over} beyond it: exceeds_model_context = 1, {then}",
                SweepWarning,
                stacklevel=4,
            )
