import jax.numpy as jnp
import numpy as np
import pytest

from sweep.physics.instance import evaluate
from sweep.physics.profile import LOGISTIC_DEFAULTS, Profile
from tests import reference
from tests.utils import assert_allclose


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


@pytest.mark.parametrize("convention", ["paper", "physical"])
def test_vectorised_matches_scalar_reference(convention):
    rng = np.random.default_rng(7)
    context = rng.integers(100, 140_000, 300).astype(float)
    batch = rng.choice([0, 1, 3, 17, 100, 600], 300).astype(float)
    frac = rng.uniform(0.05, 1.0, 300)
    load = rng.choice([1.0, 0.85, 0.5], 300)
    out = evaluate(
        profile(),
        jnp.asarray(context),
        jnp.asarray(batch),
        jnp.asarray(frac),
        jnp.asarray(load),
        convention=convention,
    )
    for i in range(300):
        want = reference.point(reference.H100, int(context[i]), int(batch[i]), frac[i], load[i], convention)
        if want["max_concurrency"] == 0:
            continue
        for key, value in want.items():
            assert_allclose(out[key][i], value, factor=100)


def test_broadcasting_shapes():
    out = evaluate(profile(), jnp.array([2048.0, 4096.0])[:, None], jnp.array([0.0, 8.0, 64.0])[None, :])
    assert out["tokens_per_watt"].shape == (2, 3)
    assert out["max_concurrency"].shape == (2, 1)


def test_no_sequence_fits_paper_gives_zero_physical_gives_nan():
    paper = evaluate(profile(), 2.0**30, 0.0)
    assert float(paper["max_concurrency"]) == 0 and float(paper["concurrency"]) == 0
    assert float(paper["tokens_per_second"]) == 0 and float(paper["tokens_per_watt"]) == 0
    assert int(paper["feasible"]) == 0
    phys = evaluate(profile(), 2.0**30, 0.0, convention="physical")
    assert np.isnan(float(phys["tokens_per_watt"])) and np.isnan(float(phys["gpu_power"]))


def test_physical_divides_by_the_whole_instance():
    paper = evaluate(profile(), 8192.0, 0.0)
    phys = evaluate(profile(), 8192.0, 0.0, convention="physical")
    assert float(paper["tokens_per_watt"]) == pytest.approx(8 * float(phys["tokens_per_watt"]), rel=1e-14)
    assert float(phys["instance_power"]) == pytest.approx(8 * float(phys["gpu_power"]), rel=1e-14)


def test_batch_caps_at_n_max_and_load():
    out = evaluate(profile(), 8192.0, jnp.array([1.0, 100.0, 128.0, 1000.0, 0.0]))
    np.testing.assert_array_equal(np.asarray(out["concurrency"]), [1, 100, 128, 128, 128])
    loaded = evaluate(profile(), 8192.0, 0.0, load=0.85)
    assert float(loaded["concurrency"]) == 108  # int(0.85 · 128)


def test_unknown_convention():
    with pytest.raises(ValueError, match="convention"):
        evaluate(profile(), 8192.0, 0.0, convention="nope")


def test_context_beyond_the_models_maximum_is_flagged_nan_physical_kept_paper():
    limited, unlimited = profile(max_context_tokens=32768.0), profile()  # 0 = unknown: no limit
    for convention in ("paper", "physical"):
        for context in (32768.0, 65536.0):  # up to the limit is fine (scalars: the other tests' shapes)
            out = evaluate(limited, context, 0.0, convention=convention)
            free = evaluate(unlimited, context, 0.0, convention=convention)
            beyond = context > 32768
            assert int(out["exceeds_model_context"]) == beyond and int(free["exceeds_model_context"]) == 0
            for key in ("concurrency", "iteration_time", "tokens_per_second", "gpu_power", "tokens_per_watt"):
                if beyond and convention == "physical":
                    assert np.isnan(out[key]) and np.isfinite(free[key]), key
                else:
                    assert float(out[key]) == float(free[key]), key
            assert float(out["max_concurrency"]) == float(free["max_concurrency"])  # a KV-cache fact
