"""REPORT.md section "Uncertainty": the paper's headline gains under projected-hardware uncertainty.

Monte Carlo intervals of each headline ratio (issue #11), its drivers by total Sobol' index of the
ratio itself, and a one-at-a-time tornado of the B200 projection.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

from sweep.api import run
from sweep.grid import spec as _grid
from sweep.reproduce.common import FLEET_PAIRS, md_table, paper_targets, section
from sweep.reproduce.figures import plot_tornado

UNCERTAINTY_SAMPLES = 2048  # Monte Carlo joint draws (scrambled Sobol', seed UNCERTAINTY_SEED)
SOBOL_BASE = 1024  # Saltelli base samples N: N·(d + 2) evaluations per grid point
UNCERTAINTY_SEED = 0
TORNADO_STEP = 0.2  # sweep.sensitivity(method="oat") moves each parameter to (1 ∓ 0.2) × nominal
HEADLINE_WORKLOAD, HEADLINE_B_SHORT = FLEET_PAIRS[0]  # the paper's headline ratios: Azure, B_short 4096
ONE_OVER_W_CONTEXTS = (4096, 65536)


def _headline_spec(grids: Path, name: str, axes: dict) -> _grid.GridSpec:
    """A paper grid restricted to the points its headline ratios use (other axes as in the file)."""
    path = grids / name
    raw = tomllib.loads(path.read_text())
    raw["axes"] = {**raw["axes"], **axes}
    return _grid.parse(raw, str(path))


def headline_claims(grids: Path, targets: dict) -> list:
    """The headline ratios as (label, spec, dim, numerator, denominator, fixed selection, paper value).

    The same grids and points as the Table 1 and Table 3 sections (paper convention). Paper values:
    Table 3's printed ratios, else the ratio of the paper's printed tokens/W (marked "derived")."""
    fleet = _headline_spec(
        grids,
        "table3.toml",
        {
            "workload": [HEADLINE_WORKLOAD],
            "b_short": [HEADLINE_B_SHORT],
            "topology": ["homogeneous", "fleetopt"],
        },
    )
    law = _headline_spec(grids, "table1.toml", {"context": list(ONE_OVER_W_CONTEXTS)})
    r = targets["table3_ratios"]
    printed = {(t["workload"], t["gpu"]): [float(v) for v in t["tokens_per_watt"]] for t in targets["table3"]}
    t1 = targets["table1"]
    i, j = (t1["context"].index(c) for c in ONE_OVER_W_CONTEXTS)

    def law_paper(gpu):
        tpw = t1[f"{gpu}_tokens_per_watt"]
        return f"{float(tpw[i]) / float(tpw[j]):.2f} (derived)"

    b200 = printed[(HEADLINE_WORKLOAD, "B200")]
    k4, k64 = (f"{c // 1024}K" for c in ONE_OVER_W_CONTEXTS)
    return [
        (
            "topology: FleetOpt / homogeneous, H100",
            fleet,
            "topology",
            "fleetopt",
            "homogeneous",
            {"gpu": "H100"},
            r["topology"],
        ),
        (
            "topology: FleetOpt / homogeneous, B200",
            fleet,
            "topology",
            "fleetopt",
            "homogeneous",
            {"gpu": "B200"},
            f"{b200[2] / b200[0]:.2f} (derived)",
        ),
        (
            "generation: B200 / H100, homogeneous",
            fleet,
            "gpu",
            "B200",
            "H100",
            {"topology": "homogeneous"},
            r["generation"],
        ),
        (
            "combined: B200 FleetOpt / H100 homogeneous",
            fleet,
            None,
            {"gpu": "B200", "topology": "fleetopt"},
            {"gpu": "H100", "topology": "homogeneous"},
            {},
            r["combined"],
        ),
        (
            f"1/W law: {k4} / {k64}, H100",
            law,
            "context",
            ONE_OVER_W_CONTEXTS[0],
            ONE_OVER_W_CONTEXTS[1],
            {"gpu": "H100"},
            law_paper("H100"),
        ),
        (
            f"1/W law: {k4} / {k64}, B200",
            law,
            "context",
            ONE_OVER_W_CONTEXTS[0],
            ONE_OVER_W_CONTEXTS[1],
            {"gpu": "B200"},
            law_paper("B200"),
        ),
    ]


def claim_distribution(ds, dim, numerator, denominator, fixed: dict) -> dict:
    """Nominal, mean and (5 %, 50 %, 95 %) quantiles of one ratio over the Monte Carlo draws.

    One dim: `sweep.compare` (both sides under the same joint draws). Two dims at once (the combined
    gain: numerator and denominator differ in GPU and topology): the same ratio of the kept samples."""
    import numpy as np

    from sweep.uncertainty.compare import compare

    if dim is not None:
        c = compare(ds, dim, numerator, denominator).sel(fixed).squeeze()
        return {
            "nominal": float(c.ratio),
            "mean": float(c.ratio_mean),
            "quantile": [float(c.ratio_quantile.sel(quantile=q)) for q in (0.05, 0.5, 0.95)],
        }
    var = "fleet_tokens_per_watt" if "fleet_tokens_per_watt" in ds else "tokens_per_watt"
    num, den = ds.sel(numerator).squeeze(), ds.sel(denominator).squeeze()
    r = (num[f"{var}_samples"] / den[f"{var}_samples"]).values
    return {
        "nominal": float(num[var] / den[var]),
        "mean": float(np.nanmean(r)),
        "quantile": [float(q) for q in np.nanquantile(r, (0.05, 0.5, 0.95))],
    }


def _model_inputs(spec):
    """What the compiled kernel needs for a spec: profile table, point axes and params, evaluator, extras."""
    from sweep.api import point_inputs
    from sweep.grid.evaluators import FleetEvaluator, InstanceEvaluator
    from sweep.grid.tables import profile_table

    table = profile_table(spec)
    point_axes = [n for n in spec.axes if _grid.AXES[n].group != "profile"]
    params = {k: v for k, v in spec.params.items() if _grid.AXES[k].group != "profile"}
    evaluator = (InstanceEvaluator if spec.mode == "instance" else FleetEvaluator)(spec.convention)
    axes, extras = point_inputs(spec, point_axes)
    return table, point_axes, axes, params, evaluator, extras


def evaluate_designs(spec, *designs) -> tuple:
    """The grid's target under several designs of multipliers, in ONE compiled-kernel call.

    Each design is a function of the drawn parameters (the default uncertainty: every projected
    catalog value) returning (rows, d + 1) multipliers. Returns ([DataArray (sample, *grid dims)] per
    design, the drawn parameters)."""
    import numpy as np
    import xarray as xr

    from sweep.grid.engine import run_samples
    from sweep.grid.uncertainty_options import UncertaintyOptions
    from sweep.uncertainty.draws import index_map, parameters

    table, point_axes, axes, params, evaluator, extras = _model_inputs(spec)
    drawn = parameters(table, spec.uncertainty or UncertaintyOptions(method="monte_carlo"), spec.where)
    blocks = [design(drawn) for design in designs]
    target = evaluator.target
    y = run_samples(
        table,
        axes,
        params,
        evaluator,
        np.concatenate(blocks),
        index_map(table, drawn),
        outputs=(target,),
        extras=extras,
        chunk_points=spec.chunk_points,
        reduce=False,
    )[target]
    dims = [*table.categorical, *point_axes]
    y = y.reshape(y.shape[:1] + tuple(len(v) for v in table.categorical.values()) + y.shape[2:])
    y = xr.DataArray(y, dims=["sample", *dims], coords={k: list(spec.axes[k]) for k in dims})
    starts = np.cumsum([0] + [len(b) for b in blocks])
    return [y.isel(sample=slice(a, b)) for a, b in zip(starts[:-1], starts[1:])], drawn


def sobol_multipliers(drawn: list, n: int = SOBOL_BASE, seed: int = UNCERTAINTY_SEED):
    """Saltelli design (the layout of `sweep.sensitivity(method="sobol")`) as multipliers."""
    from sweep.uncertainty.draws import multipliers_of
    from sweep.uncertainty.indices import sobol_design

    return multipliers_of(sobol_design(len(drawn), n, seed), drawn)


def oat_multipliers(drawn: list, step: float = TORNADO_STEP):
    """Nominal, then each parameter at (1 − step) and (1 + step) × nominal (as `sweep.sensitivity(method="oat")`)."""
    import numpy as np

    d = len(drawn)
    m = np.ones((2 * d + 1, d + 1))
    for j in range(d):
        m[1 + 2 * j, j], m[2 + 2 * j, j] = 1.0 - step, 1.0 + step
    return m


def ratio_sobol(y, claims: list, d: int, seed: int = UNCERTAINTY_SEED) -> dict:
    """Sobol' indices of each claim's RATIO: {"S1", "ST", "S1_conf", "ST_conf"} of shape (d, claims).

    y: the target on the Saltelli design (`evaluate_designs` with `sobol_multipliers`); both grid
    points of a claim are under the same design rows, the ratio is formed row by row, and the
    Saltelli/Jansen estimators (`sobol_indices`, bootstrap seed + 1, as `sweep.sensitivity`) are
    applied to it."""
    import numpy as np

    from sweep.uncertainty.indices import sobol_indices

    columns = []
    for _, _, dim, num, den, fixed, _ in claims:
        num, den = ({dim: num, **fixed}, {dim: den, **fixed}) if dim is not None else (num, den)
        columns.append((y.sel(num).squeeze() / y.sel(den).squeeze()).values)
    res = sobol_indices(np.stack(columns, axis=1), d, seed=seed + 1)
    return {k: res[k] for k in ("S1", "ST", "S1_conf", "ST_conf")}


def _short(name: str) -> str:
    """A parameter's field in backticks: "B200/llama-3.1-70b.power_nominal_w" -> `power_nominal_w`."""
    return f"`{name.rpartition('.')[2]}`"


def _claim_drivers(spec, claims: list, fleet) -> tuple:
    """Each claim of `spec`: its drivers [(parameter, S_T)] by total Sobol' index of its ratio; on the
    `fleet` grid also the one-at-a-time tornado of the B200 homogeneous point and its parameter names."""
    from sweep.uncertainty.indices import oat_tornado, rank

    designs = (sobol_multipliers, oat_multipliers) if spec is fleet else (sobol_multipliers,)
    ys, drawn = evaluate_designs(spec, *designs)
    st = ratio_sobol(ys[0], claims, len(drawn))["ST"]
    names = [p.name for p in drawn]
    drivers = {
        c[0]: [(nm, float(st[names.index(nm), k])) for nm in rank(st[:, k], names)]
        for k, c in enumerate(claims)
    }
    if spec is not fleet:
        return drivers, None
    y_oat = ys[1].sel(gpu="B200", topology="homogeneous").squeeze().values
    tornado = oat_tornado(y_oat[1::2], y_oat[2::2], y_oat[0])
    return drivers, (tornado, [nm.rpartition(".")[2] for nm in names])


def _evaluate_claims(claims: list, fleet) -> tuple:
    """Monte Carlo runs of each distinct grid of `claims` (by id of its spec), every claim's drivers, the
    uncertain parameters {name: (distribution, size)} and the tornado (with its names) of `fleet`."""
    mc_options = {
        "method": "monte_carlo",
        "samples": UNCERTAINTY_SAMPLES,
        "seed": UNCERTAINTY_SEED,
        "keep_samples": True,
    }
    specs = [c[1] for k, c in enumerate(claims) if all(c[1] is not b[1] for b in claims[:k])]
    runs, drivers, uncertain, tornado = {}, {}, {}, None
    for spec in specs:
        ds = run(spec, uncertainty=mc_options, command=f"sweep reproduce (uncertainty, {spec.where})")
        runs[id(spec)] = ds
        for p in json.loads(ds.attrs["uncertainty_parameters"]):
            uncertain[p["name"]] = (p["distribution"], p["size"])
        mine, oat = _claim_drivers(spec, [c for c in claims if c[1] is spec], fleet)
        drivers.update(mine)
        if spec is fleet:
            tornado = oat
    return runs, drivers, uncertain, tornado


def _claim_table(claims: list, runs: dict, drivers: dict) -> list:
    """One row per claim: paper, nominal, 90 % interval, mean and its top drivers."""
    rows = []
    for label, spec, dim, num, den, fixed, paper in claims:
        r = claim_distribution(runs[id(spec)], dim, num, den, fixed)
        q05, _, q95 = r["quantile"]
        top = ", ".join(f"{_short(nm)} {v:.2f}" for nm, v in drivers[label]) or "— (no uncertain parameter)"
        rows.append([label, paper, f"{r['nominal']:.2f}", f"{q05:.2f}–{q95:.2f}", f"{r['mean']:.2f}", top])
    header = ["claim", "paper", "ours (nominal)", "90 % interval", "mean", "top-3 drivers (S_T)"]
    return md_table(header, rows)


def _method_note(rate: str) -> list:
    """Which grids and points, the Monte Carlo and Sobol' settings, and where the paper's values come from."""
    return [
        f"Paper convention, the grids and points of the sections above: Table 3 ({HEADLINE_WORKLOAD},"
        f" B_short = {HEADLINE_B_SHORT}, {rate}) and Table 1 ({ONE_OVER_W_CONTEXTS[0] // 1024}K and"
        f" {ONE_OVER_W_CONTEXTS[1] // 1024}K, n = n_max). Monte Carlo: {UNCERTAINTY_SAMPLES} joint"
        f" draws (scrambled Sobol', seed {UNCERTAINTY_SEED}), both sides of a ratio under the same"
        " draws (`sweep.compare`); 90 % interval = 5 %–95 % quantiles. Drivers: total Sobol' index"
        f" S_T of the ratio itself (Saltelli design, N = {SOBOL_BASE}, Jansen estimator). Paper: Table"
        " 3's printed ratios; (derived) = the ratio of the paper's printed tokens/W.",
    ]


def _uncertain_note(uncertain: dict) -> list:
    """The uncertain parameters: how many, their distributions and widths, whose profile they belong to."""
    entities = sorted({name.rpartition(".")[0] for name in uncertain})
    widths = sorted({f"{dist} ±{100 * size:.0f} %" for dist, size in uncertain.values()})
    return [
        f"Uncertain: the {len(uncertain)} projected values of these grids ({', '.join(widths)} each, the"
        f" catalog's), all fields of the {', '.join(f'`{e}`' for e in entities)} calibrated profile: "
        + ", ".join(_short(n) for n in uncertain)
        + ". The H100 values are measured (no uncertainty), so ratios between H100 points are exact.",
    ]


def _tornado_block(tornado: dict, names: list, rate: str, out: Path) -> list:
    """The figure `uncertainty_tornado.png` in `out` and its caption (the widest parameter's swing)."""
    low, high = tornado["low"], tornado["high"]
    lead = int(tornado["order"][0])
    figure = plot_tornado(
        names,
        low,
        high,
        f"B200 projection: fleet tokens per joule, Llama-3.1-70B TP8, {HEADLINE_WORKLOAD}, homogeneous,\n"
        f"{rate} (paper convention); one parameter at a time ±{100 * TORNADO_STEP:.0f} %",
        out / "uncertainty_tornado.png",
        step=TORNADO_STEP,
    )
    return [
        f"![tornado: B200 projection]({figure.name})",
        "",
        f"Tornado: the B200 side of the generation gain, one parameter at a time at {1 - TORNADO_STEP:g}×"
        f" and {1 + TORNADO_STEP:g}× nominal, the others nominal; widest: `{names[lead]}`"
        f" ({100 * low[lead]:+.1f} % at {1 - TORNADO_STEP:g}×, {100 * high[lead]:+.1f} % at"
        f" {1 + TORNADO_STEP:g}×).",
    ]


def uncertainty_section(grids, output_dir) -> str:
    """The REPORT.md section "Uncertainty" (Markdown) and the figure `uncertainty_tornado.png`.

    The paper's headline ratios (Table 3's topology, generation and combined gains at Azure, B_short
    4096; Table 1's 4K / 64K ratio), paper convention, under the default uncertainty (every projected
    catalog value uniform ± its catalog half-width): Monte Carlo with joint draws shared by both sides
    of each ratio (`sweep.run` + `sweep.compare`), the drivers of each ratio by total Sobol' index
    (`ratio_sobol`), and a one-at-a-time tornado of the B200 side of the generation gain. Every
    number comes from the models.
    """
    grids, out = Path(grids), Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    claims = headline_claims(grids, paper_targets())
    fleet = claims[2][1]  # the generation gain's grid: the tornado's too
    runs, drivers, uncertain, (tornado, tornado_names) = _evaluate_claims(claims, fleet)
    table = _claim_table(claims, runs, drivers)
    rate = f"λ = {fleet.params['arrival_rate']:g} req/s"
    lines = section(
        "Uncertainty — the headline gains under projected-hardware uncertainty",
        _method_note(rate),
        table,
        _uncertain_note(uncertain),
        _tornado_block(tornado, tornado_names, rate, out),
    )
    return "\n".join(lines)
