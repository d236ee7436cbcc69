import jax.numpy as jnp
import numpy as np
import pytest

from sweep.physics.concurrency import max_concurrency
from sweep.physics.profile import LOGISTIC_DEFAULTS, Profile
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


@pytest.mark.parametrize(
    "context", [1, 15, 16, 17, 1000, 2048, 4096, 8191, 8192, 8193, 65536, 131072, 1 << 20]
)
def test_matches_scalar_reference(context):
    p = profile()
    assert float(max_concurrency(p, jnp.float64(context))) == reference.n_max(reference.H100, context)


def test_exact_integer_quotients_never_come_out_one_low():
    # kv_blocks·blk/C exact: a reciprocal-multiply floor would give 1023 here for some inputs.
    contexts = np.arange(16, 16 * 4097, 16, dtype=np.float64)
    p = profile(kv_blocks=65536 * 3, max_slots=0)
    got = np.asarray(max_concurrency(p, jnp.asarray(contexts)))
    want = np.array([(65536 * 3) // (int(c) // 16) for c in contexts], dtype=np.float64)
    np.testing.assert_array_equal(got, want)


def test_slot_cap_and_no_cap():
    p = profile()
    assert float(max_concurrency(p, 2048.0)) == 512  # KV-bound
    assert float(max_concurrency(profile(kv_blocks=10**9), 2048.0)) == 1024  # slots: 256·8192/2048
    assert float(max_concurrency(profile(kv_blocks=10**9, max_slots=0), 2048.0)) == 10**9 // 128


def test_nothing_fits_gives_zero_and_min_concurrency_clamps():
    assert float(max_concurrency(profile(), 2.0**30)) == 0
    assert float(max_concurrency(profile(min_concurrency=1), 2.0**30)) == 1


def test_relaxed_is_the_unfloored_expression():
    p = profile(max_slots=0)
    got = float(max_concurrency(p, 3000.0, relaxed=True))
    assert got == pytest.approx(65536 * 16 / 3000, rel=1e-14)
