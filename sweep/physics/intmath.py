"""Exact integer floors and ceilings, with a continuous relaxation for gradients.

XLA may rewrite `a / b` as `a * (1/b)`, so `floor(a / b)` of an exact quotient can come out one
low (1023 instead of 1024). Integer-valued operands are therefore rounded to int64 and divided
with integer `//`. With `relaxed=True` the plain real quotient is returned instead: this is the
continuous relaxation whose derivatives sweep reports as elasticities.
"""

import jax.numpy as jnp


def _as_int(x):
    return jnp.round(x).astype(jnp.int64)


def floor_div(numerator, denominator, *, relaxed: bool = False):
    """floor(numerator / denominator) for integer-valued operands (float result)."""
    if relaxed:
        return numerator / denominator
    n, d = _as_int(numerator), _as_int(denominator)
    safe_d = jnp.where(d == 0, 1, d)
    return (n // safe_d).astype(jnp.result_type(numerator, float))


def ceil_div(numerator, denominator, *, relaxed: bool = False):
    """ceil(numerator / denominator) for integer-valued operands (float result)."""
    if relaxed:
        return numerator / denominator
    n, d = _as_int(numerator), _as_int(denominator)
    safe_d = jnp.where(d == 0, 1, d)
    return (-((-n) // safe_d)).astype(jnp.result_type(numerator, float))


def floor(x, *, relaxed: bool = False):
    """floor(x) of a real value (no exactness issue); identity when relaxed."""
    return x if relaxed else jnp.floor(x)
