"""Serving cost: US dollars per million output tokens (`cost_per_mtok`), from GPU-hour prices.

    cost_per_mtok = dollars_per_hour / 3600 / tokens_per_s × 1e6

One instance: dollars_per_hour = price_per_gpu_hour × tp (every GPU of the instance is paid for, in
both conventions). A fleet: dollars_per_hour = Σ_pools instances × tp × price_per_gpu_hour, and
tokens_per_s the fleet's output tokens per second. Zero tokens per second costs +inf per token;
NaN (a physical-convention point with no result) stays NaN.
"""

import jax.numpy as jnp


def cost_per_mtok(dollars_per_hour, tokens_per_s):
    """US dollars per million output tokens at `dollars_per_hour` for `tokens_per_s` output tokens/s."""
    safe = jnp.where(tokens_per_s != 0, tokens_per_s, 1.0)
    return jnp.where(tokens_per_s != 0, dollars_per_hour / 3600.0 / safe * 1e6, jnp.inf)
