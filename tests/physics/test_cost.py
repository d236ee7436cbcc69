import jax.numpy as jnp
import numpy as np

from sweep.physics.cost import cost_per_mtok


def test_dollars_per_million_output_tokens():
    # 8 GPUs at $4/h serving 2000 tokens/s: $32/h / 7.2e6 tokens/h = $4.44 per million tokens
    tokens_per_s = jnp.array([2000.0, 0.0, jnp.nan])
    cost = np.asarray(cost_per_mtok(4.0 * 8, tokens_per_s))
    np.testing.assert_allclose(cost[0], 4.0 * 8 / (2000.0 * 3600.0) * 1e6, rtol=1e-15)
    assert cost[1] == np.inf and np.isnan(cost[2])  # no tokens: +inf per token; no result stays NaN
