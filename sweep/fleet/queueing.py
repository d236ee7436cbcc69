"""M/M/c and M/G/c waiting-time formulas in pure JAX (docs/models.md §3), stable for huge c.

Erlang B through the Poisson law (exact for integer c, the standard analytic continuation for
real c):
    B(c, a) = Poisson_pmf(c; a) / Poisson_cdf(c; a),   Poisson_cdf(c; a) = Q(c + 1, a)
with Q the regularised upper incomplete gamma function, evaluated in log space:
    log B = c·log a − a − lgamma(c + 1) − log Q(c + 1, a).
Erlang C (probability of waiting, M/M/c, offered load a = λ/μ, ρ = a/c < 1):
    C(c, a) = B / (1 − ρ·(1 − B)).
Tail of the M/G/c wait (Kimura-style two-moment correction, as in the fleet-sim planner):
    P(W > t) ≈ C · exp(−2·(c·μ − λ)·t / (1 + cv²)),  so
    W_q = max(0, log(C / (1 − q))) · (1 + cv²) / (2·(c·μ − λ)),
which is 0 where C ≤ 1 − q and +inf where ρ ≥ 1.
"""

from __future__ import annotations

import jax.numpy as jnp
from jax.scipy.special import gammaincc, gammaln


def log_erlang_b(servers, offered_load):
    """log B(c, a) (Erlang loss probability); c > 0, a > 0."""
    c = jnp.asarray(servers, dtype=float)
    a = jnp.asarray(offered_load, dtype=float)
    ok = (c > 0) & (a > 0)
    c_s = jnp.where(ok, c, 1.0)
    a_s = jnp.where(ok, a, 1.0)
    log_b = c_s * jnp.log(a_s) - a_s - gammaln(c_s + 1.0) - jnp.log(gammaincc(c_s + 1.0, a_s))
    return jnp.where(ok, jnp.minimum(log_b, 0.0), -jnp.inf)


def log_erlang_c(servers, offered_load):
    """log C(c, a): log probability that an arrival waits (M/M/c); 0 (C = 1) where a ≥ c."""
    c = jnp.asarray(servers, dtype=float)
    a = jnp.asarray(offered_load, dtype=float)
    stable = (c > 0) & (a > 0) & (a < c)
    c_s = jnp.where(stable, c, 2.0)
    a_s = jnp.where(stable, a, 1.0)
    log_b = log_erlang_b(c_s, a_s)
    b = jnp.exp(log_b)
    rho = a_s / c_s
    log_c = log_b - jnp.log1p(-rho * (1.0 - b))
    return jnp.where(stable, jnp.minimum(log_c, 0.0), jnp.where(a >= c, 0.0, -jnp.inf))


def erlang_c(servers, offered_load):
    """C(c, a) = P(wait > 0) in an M/M/c queue with offered load a = λ/μ (Erlangs)."""
    return jnp.exp(log_erlang_c(servers, offered_load))


def wait_tail_exponent(servers, arrival_rate, service_rate, service_scv, quantile=0.99):
    """log(C/(1−q)) − 2(cμ − λ)·t/(1+cv²) at t = 1 s is affine in t; returns (log C/(1−q), rate).

    `rate` = 2(cμ − λ)/(1 + cv²) (1/s): the Kimura decay rate of P(W > t).
    """
    c = jnp.asarray(servers, dtype=float)
    lam = jnp.asarray(arrival_rate, dtype=float)
    mu = jnp.asarray(service_rate, dtype=float)
    log_excess = log_erlang_c(c, lam / mu) - jnp.log1p(-quantile)
    rate = 2.0 * (c * mu - lam) / (1.0 + service_scv)
    return log_excess, rate


def mgc_wait_quantile_s(servers, arrival_rate, service_rate, service_scv=1.0, quantile=0.99):
    """Kimura M/G/c q-quantile of the queueing wait (s); c servers each of rate μ (1/s)."""
    log_excess, rate = wait_tail_exponent(servers, arrival_rate, service_rate, service_scv, quantile)
    stable = rate > 0
    safe_rate = jnp.where(stable, rate, 1.0)
    wait = jnp.maximum(log_excess, 0.0) / safe_rate
    return jnp.where(stable, wait, jnp.inf)
