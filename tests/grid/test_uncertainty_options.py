"""The grid's `uncertainty` key (sweep.grid.uncertainty_options): every bad spec is one SweepInputError
line naming the file and key; `uncertainty = true` still gives the first-order band."""

import math

import numpy as np
import pytest

import sweep
from sweep.errors import SweepInputError
from sweep.grid import spec as _grid

WHERE = "grid.toml"
# one GPU, one model, two contexts: the grid shape the uncertainty tests share (one compile each)
BASE = {
    "profile": "roofline",
    "convention": "physical",
    "tp": 8,
    "axes": {"gpu": ["B200"], "model": ["llama-3.1-70b"], "context": [8192, 32768]},
}
GOOD_CORR = {"parameters": ["B200.tdp_w", "B200.memory_bytes"], "matrix": [[1.0, 0.5], [0.5, 1.0]]}


def parse(uncertainty):
    return _grid.parse({**BASE, "uncertainty": uncertainty}, WHERE)


def tdp(**spec):
    return {"parameters": {"tdp_w": spec}}


BAD = {
    "negative width": (
        tdp(distribution="uniform", width=-0.1),
        r"uncertainty\.parameters\.tdp_w\.width: got -0\.1; allowed: numbers in \(0, 1\)",
    ),
    "zero width": (
        tdp(distribution="uniform", width=0),
        r"tdp_w\.width: got 0; allowed: numbers in \(0, 1\)",
    ),
    "uniform width 1": (
        tdp(distribution="uniform", width=1.0),
        r"tdp_w\.width: got 1\.0; allowed: numbers in \(0, 1\)",
    ),
    "triangular width >1": (tdp(distribution="triangular", width=1.5), r"tdp_w\.width: got 1\.5"),
    "zero sigma": (tdp(distribution="normal", sigma=0), r"tdp_w\.sigma: got 0; allowed: finite numbers > 0"),
    "nan sigma": (tdp(distribution="lognormal", sigma=float("nan")), r"tdp_w\.sigma: got nan"),
    "sigma for uniform": (
        tdp(distribution="uniform", sigma=0.1),
        r"uncertainty\.parameters\.tdp_w: unknown key\(s\) \['sigma'\]; allowed: distribution, width",
    ),
    "missing width": (tdp(distribution="triangular"), r"tdp_w: missing required key\(s\) \['width'\]"),
    "missing distribution": (
        tdp(width=0.1),
        r"uncertainty\.parameters\.tdp_w: got \{'width': 0\.1\}; allowed: \{ distr",
    ),
    "unknown distribution": (
        tdp(distribution="cauchy", width=0.1),
        r"tdp_w\.distribution: got 'cauchy'; allowed: uniform, triangular, normal, lognormal",
    ),
    "distribution not a string": (
        tdp(distribution=["uniform"], width=0.1),
        r"tdp_w\.distribution: got \['uniform'\]",
    ),
    "parameter not a table": ({"parameters": {"tdp_w": 0.2}}, r"uncertainty\.parameters\.tdp_w: got 0\.2"),
    "parameters not a table": ({"parameters": ["tdp_w"]}, r"uncertainty\.parameters: got \['tdp_w'\]"),
    "samples 1": ({"samples": 1}, r"uncertainty\.samples: got 1; allowed: integers >= 2"),
    "samples 0": ({"samples": 0}, r"uncertainty\.samples: got 0; allowed: integers >= 2"),
    "samples non-integer": ({"samples": 64.5}, r"uncertainty\.samples: got 64\.5; allowed: integers >= 2"),
    "samples a string": ({"samples": "64"}, r"uncertainty\.samples: got '64'; allowed: integers >= 2"),
    "samples a bool": ({"samples": True}, r"uncertainty\.samples: got True; allowed: integers >= 2"),
    "negative seed": ({"seed": -1}, r"uncertainty\.seed: got -1; allowed: integers 0 <= seed < 2\^63"),
    "seed 2^63": (
        {"seed": 2**63},
        r"uncertainty\.seed: got 9223372036854775808; allowed: integers 0 <= seed",
    ),
    "seed 10^20": (
        {"seed": 99999999999999999999},
        r"uncertainty\.seed: got 99999999999999999999; allowed: integers 0 <= seed < 2\^63",
    ),
    "seed a bool": ({"seed": True}, r"uncertainty\.seed: got True; allowed: integers 0 <= seed"),
    "seed non-integer": ({"seed": 1.5}, r"uncertainty\.seed: got 1\.5; allowed: integers 0 <= seed"),
    "seed a string": ({"seed": "0"}, r"uncertainty\.seed: got '0'; allowed: integers 0 <= seed"),
    "unknown method": (
        {"method": "bootstrap"},
        r"uncertainty\.method: got 'bootstrap'; allowed: first_order, monte_carlo",
    ),
    "unknown sampler": ({"sampler": "halton"}, r"uncertainty\.sampler: got 'halton'; allowed: sobol, lhs"),
    "quantile 0": (
        {"quantiles": [0.0, 0.5]},
        r"uncertainty\.quantiles: got 0\.0; allowed: numbers in \(0, 1\)",
    ),
    "quantile 1": ({"quantiles": [0.5, 1]}, r"uncertainty\.quantiles: got 1; allowed: numbers in \(0, 1\)"),
    "quantile above 1": ({"quantiles": [1.5]}, r"uncertainty\.quantiles: got 1\.5"),
    "quantiles empty": ({"quantiles": []}, r"uncertainty\.quantiles: got \[\]; allowed: a list of numbers"),
    "quantiles not a list": ({"quantiles": 0.5}, r"uncertainty\.quantiles: got 0\.5; allowed: a list"),
    "quantiles repeated": ({"quantiles": [0.5, 0.05, 0.5]}, r"uncertainty\.quantiles: duplicate values"),
    "keep_samples not a bool": (
        {"keep_samples": 1},
        r"uncertainty\.keep_samples: got 1; allowed: true or false",
    ),
    "unknown key": (
        {"colour": "red"},
        r"uncertainty: unknown key\(s\) \['colour'\]; allowed: method, samples",
    ),
    "not a table": ("yes", r"uncertainty: got 'yes'; allowed: true, false or a table"),
    "non-symmetric matrix": (
        {"correlation": {**GOOD_CORR, "matrix": [[1.0, 0.5], [0.4, 1.0]]}},
        r"uncertainty\.correlation\.matrix: not a correlation matrix; allowed: symmetric, unit diagonal",
    ),
    "non-unit diagonal": (
        {"correlation": {**GOOD_CORR, "matrix": [[2.0, 0.5], [0.5, 1.0]]}},
        r"uncertainty\.correlation\.matrix: not a correlation matrix",
    ),
    "entry above 1": (
        {"correlation": {**GOOD_CORR, "matrix": [[1.0, 1.5], [1.5, 1.0]]}},
        r"uncertainty\.correlation\.matrix: not a correlation matrix",
    ),
    "not positive definite": (
        {
            "correlation": {
                "parameters": ["B200.tdp_w", "B200.memory_bytes", "B200.fp16_flops"],
                "matrix": [[1.0, 0.9, -0.9], [0.9, 1.0, 0.9], [-0.9, 0.9, 1.0]],
            }
        },
        r"uncertainty\.correlation\.matrix: not positive definite; allowed: a valid correlation matrix",
    ),
    "singular": (
        {"correlation": {**GOOD_CORR, "matrix": [[1.0, 1.0], [1.0, 1.0]]}},
        r"uncertainty\.correlation\.matrix: not positive definite",
    ),
    "matrix of the wrong shape": (
        {"correlation": {**GOOD_CORR, "matrix": [[1.0, 0.5]]}},
        r"uncertainty\.correlation\.matrix: got \[\[1\.0, 0\.5\]\]; allowed: a 2×2 list of lists",
    ),
    "matrix entry not a number": (
        {"correlation": {**GOOD_CORR, "matrix": [[1.0, "a"], ["a", 1.0]]}},
        r"uncertainty\.correlation\.matrix: got 'a'; allowed: finite numbers",
    ),
    "one correlated parameter": (
        {"correlation": {"parameters": ["B200.tdp_w"], "matrix": [[1.0]]}},
        r"uncertainty\.correlation\.parameters: got \['B200\.tdp_w'\]; allowed: a list of at least two",
    ),
    "repeated correlated parameter": (
        {"correlation": {"parameters": ["B200.tdp_w", "B200.tdp_w"], "matrix": [[1.0, 0.0], [0.0, 1.0]]}},
        r"uncertainty\.correlation\.parameters: duplicate values",
    ),
    "correlation without matrix": (
        {"correlation": {"parameters": ["B200.tdp_w", "B200.memory_bytes"]}},
        r"uncertainty\.correlation: missing required key\(s\) \['matrix'\]",
    ),
    "correlation with first_order": (
        {"method": "first_order", "correlation": GOOD_CORR},
        r'uncertainty\.correlation: given with method first_order; allowed: method = "monte_carlo"',
    ),
}


def test_seed_range_edges_are_accepted():
    """0 and 2^63 − 1 (the largest int64) are valid seeds; 2^63 is refused (BAD["seed 2^63"])."""
    assert parse({"seed": 0}).uncertainty.seed == 0
    assert parse({"seed": 2**63 - 1}).uncertainty.seed == 2**63 - 1
    assert parse({"seed": 7.0}).uncertainty.seed == 7  # TOML may give a whole float


@pytest.mark.parametrize("case", list(BAD))
def test_bad_spec_is_one_line_error(case):
    import re

    value, match = BAD[case]
    with pytest.raises(SweepInputError) as err:
        parse(value)
    msg = str(err.value)
    assert "\n" not in msg
    assert msg.startswith(f"{WHERE}: "), msg
    assert re.search(match, msg), msg


def test_defaults_and_normalisation():
    unc = parse({"quantiles": [0.95, 0.05]}).uncertainty
    assert unc.method == "monte_carlo"  # a table means Monte Carlo unless it says otherwise
    assert (unc.samples, unc.seed, unc.sampler, unc.keep_samples) == (4096, 0, "sobol", False)
    assert unc.quantiles == (0.05, 0.95)  # sorted
    assert unc.parameters == {} and unc.correlation == ()
    assert parse(True).uncertainty.method == "first_order"
    assert parse(False).uncertainty is None and _grid.parse(BASE).uncertainty is None
    given = parse(
        {
            "samples": 64,
            "parameters": {"B200.tdp_w": {"distribution": "lognormal", "sigma": 0.1}},
            "correlation": GOOD_CORR,
        }
    ).uncertainty
    assert given.parameters == {"B200.tdp_w": ("lognormal", 0.1)}
    assert given.correlation == (("B200.tdp_w", "B200.memory_bytes"), ((1.0, 0.5), (0.5, 1.0)))
    assert isinstance(given.samples, int) and given.samples == 64
    # first order implies elasticities
    assert parse(True).elasticities and not parse({"samples": 64}).elasticities


def test_unknown_parameter_is_found_at_run_time():
    with pytest.raises(SweepInputError) as err:
        sweep.run(
            {
                **BASE,
                "uncertainty": {
                    "samples": 8,
                    "parameters": {"B300.tdp_w": {"distribution": "uniform", "width": 0.1}},
                },
            }
        )
    msg = str(err.value)
    assert "\n" not in msg
    assert msg.startswith(
        "<dict>: uncertainty.parameters: unknown parameter 'B300.tdp_w'; allowed: a field ("
    )


@pytest.fixture(scope="module")
def first_order():
    return sweep.run({**BASE, "uncertainty": True})


def test_uncertainty_true_gives_the_first_order_band(first_order):
    ds = first_order
    for name in (
        "tokens_per_watt_rel_uncertainty",
        "tokens_per_watt_low",
        "tokens_per_watt_high",
        "elasticity",
    ):
        assert name in ds, name
    assert not [v for v in ds.data_vars if v.endswith(("_mean", "_std", "_quantile", "_samples"))]
    assert "first-order" in ds.attrs["uncertainty_method"] and "uncertainty_parameters" not in ds.attrs
    rel = ds.tokens_per_watt_rel_uncertainty
    # B200 specs projected ±20 %: a few per cent at least, and the band is value·exp(∓2·rel) (log space)
    assert np.all(rel.values > 0.05)
    np.testing.assert_allclose(ds.tokens_per_watt_low, ds.tokens_per_watt * np.exp(-2 * rel), rtol=1e-12)
    np.testing.assert_allclose(ds.tokens_per_watt_high, ds.tokens_per_watt * np.exp(2 * rel), rtol=1e-12)
    assert float(ds.uncertainty.sel(parameter="tdp_w").max()) == 0.2


def test_first_order_with_named_parameters_uses_their_sigma(first_order):
    """[uncertainty.parameters] with method first_order: only the named value, σ = its distribution's std."""
    sigma = 0.05
    ds = sweep.run(
        {
            **BASE,
            "uncertainty": {
                "method": "first_order",
                "parameters": {"B200.tdp_w": {"distribution": "normal", "sigma": sigma}},
            },
        }
    )
    u = ds.uncertainty.squeeze()
    assert float(u.sel(parameter="tdp_w")) == pytest.approx(math.sqrt(3) * sigma, rel=1e-15)
    assert float(abs(u.drop_sel(parameter="tdp_w")).max()) == 0.0
    e = first_order.elasticity.sel(parameter="tdp_w")
    np.testing.assert_allclose(ds.tokens_per_watt_rel_uncertainty, abs(e) * sigma, rtol=1e-12)
