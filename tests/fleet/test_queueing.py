"""Erlang C and the Kimura M/G/c wait quantile."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sweep.fleet.queueing import (
    erlang_c,
    log_erlang_b,
    log_erlang_c,
    mgc_wait_quantile_s,
)


def erlang_c_textbook(c: int, a: float) -> float:
    """C(c, a) = (a^c/c!)·c/(c−a) / (Σ_{k<c} a^k/k! + (a^c/c!)·c/(c−a))."""
    top = a**c / math.factorial(c) * c / (c - a)
    return top / (sum(a**k / math.factorial(k) for k in range(c)) + top)


def log_erlang_c_logsum(c: int, a: float) -> float:
    """log C by the same formula summed in log space (fleet-sim's form), for large c."""
    k = np.arange(c)
    log_terms = k * np.log(a) - np.array([math.lgamma(i + 1) for i in k])
    log_last = c * math.log(a) - math.lgamma(c + 1) - math.log(1 - a / c)
    log_all = np.append(log_terms, log_last)
    mx = log_all.max()
    return log_last - (mx + math.log(np.exp(log_all - mx).sum()))


@pytest.mark.parametrize("c", [1, 2, 3, 5, 8, 13, 21, 34])
@pytest.mark.parametrize("rho", [0.05, 0.3, 0.7, 0.95, 0.999])
def test_erlang_c_matches_textbook(c, rho):
    a = rho * c
    np.testing.assert_allclose(float(erlang_c(c, a)), erlang_c_textbook(c, a), rtol=1e-9)


@pytest.mark.parametrize("c, rho", [(256, 0.85), (2320, 0.85), (5632, 0.81), (20000, 0.99), (20000, 0.5)])
def test_erlang_c_large_c_stable(c, rho):
    a = rho * c
    got = float(log_erlang_c(c, a))
    ref = log_erlang_c_logsum(c, a)
    assert np.isfinite(got) and got <= 0
    np.testing.assert_allclose(got, ref, rtol=1e-8, atol=1e-8)


def test_erlang_c_limits_and_vectorisation():
    assert float(erlang_c(1, 0.4)) == pytest.approx(0.4)  # M/M/1: C = ρ
    assert float(erlang_c(10, 10.0)) == 1.0 and float(erlang_c(10, 12.0)) == 1.0
    assert float(erlang_c(10, 0.0)) == 0.0
    cs = jnp.arange(1, 6, dtype=float)[:, None]
    loads = jnp.array([0.1, 0.5, 0.9])[None, :] * cs
    out = jax.jit(erlang_c)(cs, loads)
    assert out.shape == (5, 3) and bool(jnp.all(jnp.diff(out, axis=0) < 0))  # more servers, same ρ
    assert float(log_erlang_b(1, 1.0)) == pytest.approx(math.log(0.5))


def test_erlang_c_real_servers_differentiable():
    g = jax.grad(lambda c: log_erlang_c(c, 85.0))(100.0)
    fd = (log_erlang_c(100.0 + 1e-5, 85.0) - log_erlang_c(100.0 - 1e-5, 85.0)) / 2e-5
    np.testing.assert_allclose(float(g), float(fd), rtol=1e-5)


def test_kimura_is_exact_for_mmc():
    """cv² = 1: P(W > t) = C·exp(−(cμ − λ)t) exactly for M/M/c."""
    c, lam, mu = 4, 3.0, 1.0
    expected = math.log(erlang_c_textbook(c, lam / mu) / 0.01) / (c * mu - lam)
    np.testing.assert_allclose(float(mgc_wait_quantile_s(c, lam, mu, 1.0)), expected, rtol=1e-10)
    # M/M/1: P99 wait = ln(ρ/0.01)/(μ − λ)
    np.testing.assert_allclose(float(mgc_wait_quantile_s(1, 0.9, 1.0, 1.0)), math.log(90.0) / 0.1, rtol=1e-10)


def test_kimura_sanity():
    base = float(mgc_wait_quantile_s(10, 8.0, 1.0, 1.0))
    assert float(mgc_wait_quantile_s(10, 8.0, 1.0, 0.0)) == pytest.approx(base / 2)  # M/D/c halves
    assert float(mgc_wait_quantile_s(10, 8.0, 1.0, 3.0)) == pytest.approx(2 * base)
    assert float(mgc_wait_quantile_s(11, 8.0, 1.0, 1.0)) < base  # more servers, less wait
    assert float(mgc_wait_quantile_s(10, 10.0, 1.0, 1.0)) == math.inf  # ρ = 1: unstable
    assert float(mgc_wait_quantile_s(100, 10.0, 1.0, 1.0)) == 0.0  # C ≤ 1 %: P99 wait is 0
