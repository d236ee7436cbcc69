"""Property-based fuzzing of every numeric input (issue #8).

Property: an input either runs and gives finite, non-negative outputs (NaN only where
`feasible = 0` or, physical convention, `exceeds_model_context = 1`; cost_per_mtok +inf only where no
token is served), or is rejected with a one-line `SweepInputError`; never another exception.
Grids are tiny and of one shape (1 gpu × 1 model × 2 contexts), so JAX compiles once.
The `slow` variants run many more examples: `.venv/bin/python -m pytest -m slow tests/test_fuzz.py`.
"""

import json
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import sweep
from sweep import SweepInputError
from sweep.catalogs.llms import import_hf_config
from sweep.fleet.workload import workload_from_cdf
from sweep.grid.spec import parse
from tests.test_validate import CONFIG, PROFILE

FAST = settings(
    max_examples=60,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
SLOW = settings(FAST, max_examples=500)

WEIRD = st.one_of(
    st.sampled_from(
        [math.nan, math.inf, -math.inf, 0, -1, 0.5, 2.5, 1e300, -1e300, 10**30, 10**400, True, "x", None]
    ),
    st.integers(-10, 10**6),
    st.floats(allow_nan=True, allow_infinity=True),
)
PLAUSIBLE = st.one_of(st.integers(1, 200_000), st.floats(1e-3, 1e4))
NUMBER = st.one_of(PLAUSIBLE, PLAUSIBLE, WEIRD)  # mostly plausible, so that many inputs run


def rejected_or_ok(run):
    """Run; return the result, or None when it is a one-line SweepInputError."""
    try:
        return run()
    except SweepInputError as exc:
        assert "\n" not in str(exc), str(exc)
        return None


def check_outputs(ds):
    no_result = ds["feasible"] == 0
    if "exceeds_model_context" in ds and ds.attrs["convention"] == "physical":
        no_result = no_result | (ds["exceeds_model_context"] == 1)  # beyond the model's window: NaN
    for name, var in ds.data_vars.items():
        values = var.values.astype(float)
        nan_ok = no_result.broadcast_like(var).values
        inf_ok = (ds["tokens_per_second"] == 0).values if name == "cost_per_mtok" else False  # $ per no token
        assert not (np.isinf(values) & ~inf_ok).any(), name
        assert not (np.isnan(values) & ~nan_ok).any(), name
        assert not (values < 0).any(), name


def run_grid(spec):
    ds = rejected_or_ok(lambda: sweep.run(spec))
    event("ran" if ds is not None else "rejected")
    if ds is not None:
        check_outputs(ds)


CONTEXT = st.one_of(
    NUMBER,
    st.builds(lambda a, b: [a, b], NUMBER, NUMBER),
    st.fixed_dictionaries(
        {"start": NUMBER, "stop": NUMBER},
        optional={
            "step": NUMBER,
            "num": NUMBER,
            "spacing": st.sampled_from(["linear", "geometric", "pow2", "log"]),
        },
    ),
)
SCALARS = st.fixed_dictionaries(
    {}, optional={"batch": NUMBER, "mean_length_fraction": NUMBER, "load": NUMBER, "chunk_points": NUMBER}
)


def grid(context, scalars):
    return {"axes": {"gpu": ["H100"], "model": ["llama-3.1-70b"], "context": context}, **scalars}


def _grid_specs(context, scalars):
    spec = grid(context, scalars)
    parsed = rejected_or_ok(lambda: parse(spec))
    if parsed is not None and len(parsed.axes["context"]) == 2 and len(parsed.axes["batch"]) == 1:
        run_grid(spec)  # one shape only: the runs share one compiled kernel


@FAST
@given(CONTEXT, SCALARS)
def test_grid_specs(context, scalars):
    _grid_specs(context, scalars)


@pytest.mark.slow
@SLOW
@given(CONTEXT, SCALARS)
def test_grid_specs_slow(context, scalars):
    _grid_specs(context, scalars)


PROFILE_CHANGES = st.dictionaries(
    st.sampled_from(
        sorted(k for k in PROFILE if k not in ("gpu", "model")) + ["price_per_gpu_hour", "uncertainty"]
    ),
    NUMBER,
    max_size=3,
)


def _profiles(changes):
    run_grid(
        {
            "axes": {"gpu": ["X1"], "model": ["m1"], "context": [2048, 4096]},
            "profiles": [{**PROFILE, **changes}],
        }
    )


@FAST
@given(PROFILE_CHANGES)
def test_inline_profiles(changes):
    _profiles(changes)


@pytest.mark.slow
@SLOW
@given(PROFILE_CHANGES)
def test_inline_profiles_slow(changes):
    _profiles(changes)


CONFIG_CHANGES = st.dictionaries(
    st.sampled_from(
        sorted(CONFIG)
        + ["head_dim", "num_experts", "num_experts_per_tok", "moe_intermediate_size", "decoder_sparse_step"]
    ),
    NUMBER,
    max_size=3,
)


def _configs(tmp_path, changes):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"_name_or_path": "m", **CONFIG, **changes}))
    if rejected_or_ok(lambda: import_hf_config(path, name="m")) is not None:
        run_grid(
            {
                "profile": "roofline",
                "model_configs": [str(path)],
                "axes": {"gpu": ["H100"], "model": ["m"], "context": [2048, 4096]},
            }
        )


@FAST
@given(CONFIG_CHANGES)
def test_model_configs(tmp_path, changes):
    _configs(tmp_path, changes)


@pytest.mark.slow
@SLOW
@given(CONFIG_CHANGES)
def test_model_configs_slow(tmp_path, changes):
    _configs(tmp_path, changes)


CDFS = st.one_of(
    st.lists(st.lists(WEIRD, min_size=1, max_size=3), max_size=4),
    st.lists(st.tuples(st.floats(0, 1e6), st.floats(-0.5, 1.5)), min_size=1, max_size=4),
)


def _cdfs(cdf):
    w = rejected_or_ok(lambda: workload_from_cdf(cdf, "w.json"))
    if w is not None:
        tokens, frac = np.asarray(w[0]), np.asarray(w[1])
        assert np.isfinite(tokens).all() and (np.diff(tokens) > 0).all()
        assert (np.diff(frac) >= 0).all() and frac[0] == 0 and frac[-1] == 1


@FAST
@given(CDFS)
def test_workload_cdfs(cdf):
    _cdfs(cdf)


@pytest.mark.slow
@SLOW
@given(CDFS)
def test_workload_cdfs_slow(cdf):
    _cdfs(cdf)
