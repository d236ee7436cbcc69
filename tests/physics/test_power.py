import jax.numpy as jnp
import numpy as np
import pytest

from sweep.physics.power import gpu_power_w, logistic_power_w, tdp_fraction_power_w
from sweep.physics.profile import LOGISTIC_DEFAULTS, TDP_FRACTION_POWER, Profile
from tests import reference


def profile(**over):
    return Profile.from_mapping(
        {
            **LOGISTIC_DEFAULTS,
            **reference.H100,
            "prefill_chunk_tokens": 1024,
            "price_per_gpu_hour": 0.0,
            **over,
        }
    )


@pytest.mark.parametrize("n", [0, 0.5, 1, 1.9, 2, 7, 18.6, 128, 512, 4096])
def test_logistic_matches_scalar_reference(n):
    got = float(logistic_power_w(profile(), jnp.float64(n)))
    assert got == pytest.approx(reference.logistic_power(reference.H100, n), rel=1e-13)


def test_logistic_limits():
    p = profile()
    assert float(logistic_power_w(p, 1e12)) == pytest.approx(600.0, rel=1e-9)
    assert float(logistic_power_w(p, 1.0)) > 300.0


def test_tdp_fraction_formula():
    p = profile(
        power_model=TDP_FRACTION_POWER,
        tdp_w=700.0,
        power_idle_fraction=0.43,
        power_dynamic_fraction=0.43,
        power_weight_time_s=6.0e-3,
        kv_time_per_seq_s=1.0e-4,
        calibration_context=4096,
        flops_per_token=2e10,
        peak_flops=1e15,
    )
    n, mean_len = 20.0, 4096.0
    kv = 1.0e-4 * 1.0 * n
    busy = 6.0e-3 + kv
    want = 700 * (0.43 + 0.43 * min(1.0, kv / busy + 2e10 * n / (busy * 1e15)))
    assert float(tdp_fraction_power_w(p, n, mean_len)) == pytest.approx(want, rel=1e-13)
    assert float(gpu_power_w(p, n, mean_len)) == pytest.approx(want, rel=1e-13)
    # saturates at TDP·(idle + dynamic)
    assert float(tdp_fraction_power_w(p, 1e9, mean_len)) == pytest.approx(700 * 0.86, rel=1e-12)


def test_selects_model_per_profile_row():
    rows = [
        profile(),
        profile(
            power_model=TDP_FRACTION_POWER,
            tdp_w=1000.0,
            power_idle_fraction=0.43,
            power_dynamic_fraction=0.43,
            power_weight_time_s=4e-3,
        ),
    ]
    table = Profile(*[jnp.stack([a, b]) for a, b in zip(*rows)])
    got = np.asarray(gpu_power_w(table, jnp.float64(64.0), 4096.0))
    assert got[0] == pytest.approx(reference.logistic_power(reference.H100, 64), rel=1e-13)
    assert 430.0 < got[1] < 860.0
