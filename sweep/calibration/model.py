"""The measured-run model: one serving instance at a measured concurrency and sequence length
(docs/calibration.md §1–§2), a pure JAX function of the decode-step mechanism parameters.

For a row (GPU, model, TP, dtypes; n running sequences; prompt p and output o tokens per request):

    L̄ = mean_context_tokens, or p + o/2            (tokens held per running sequence, on average)
    r = p / o                                       (prefill tokens interleaved per output token; 0 if unknown o)
    τ = iteration_time(profile, n, L̄)               (sweep.physics.roofline, with the mechanisms)
    ITL = decode_time(profile, n, L̄)                (the decode step; prefill chunks are the slow steps)
    tokens/s = replicas · n / τ;  power = replicas · TP · P_gpu (utilization power model)
    fits = n·held(L̄) ≤ KV tokens                    (paged, as vLLM admits sequences; local-attention
                                                     layers hold at most their window)
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from sweep.catalogs import gpu_catalog, model_catalog, setups
from sweep.errors import InvalidParallelismError, SweepInputError, UnsupportedDtypeError
from sweep.physics import derive
from sweep.physics.mechanisms import MECHANISMS
from sweep.physics.power import gpu_power_w
from sweep.physics.profile import Profile
from sweep.physics.roofline import decode_time_s, iteration_time_s, windowed_tokens
from sweep.vocabulary import POWER_MODELS


class RowInputs(NamedTuple):
    """The fixed per-row inputs, as (K,) float64 arrays (a pytree of dicts and arrays)."""

    gpu: dict
    model: dict
    serving: dict  # tp, dtype bytes and the other non-mechanism serving keys
    concurrency: np.ndarray
    mean_context_tokens: np.ndarray  # NaN: from prompt and output tokens
    prompt_tokens: np.ndarray  # NaN: unknown (an assumed or fitted value is used)
    output_tokens: np.ndarray  # NaN: unknown (then r = 0)
    replicas: np.ndarray  # instances in the run: num_gpus / tp, or 1 for an expert/data-parallel instance


def row_inputs(measurements) -> RowInputs:
    """Catalog arrays and serving keys of every measured row; a bad setup names the row."""
    gpus, models = gpu_catalog(), model_catalog()
    tables = {}  # (gpu, model, tp, dtypes) -> NumPy scalars of the setup, checked once

    def setup(row):
        layout = (row["tp"], row.get("expert_parallel", 1.0), row.get("data_parallel", 1.0))
        key = (row["gpu"], row["model"], *layout, row["weight_dtype"], row["kv_dtype"])
        if key not in tables:
            g, m = gpus.get(row["gpu"]), models.get(row["model"])
            try:
                serving = setups.serving_config(
                    tp=int(layout[0]),
                    expert_parallel=int(layout[1]),
                    data_parallel=int(layout[2]),
                    weight_dtype=row["weight_dtype"],
                    kv_dtype=row["kv_dtype"],
                )
                setups.check_setup(g, m, serving)
            except SweepInputError as exc:
                columns = next((c for kind, c in _SETUP_COLUMNS.items() if isinstance(exc, kind)), "")
                raise type(exc)(f"{row['where']}: {columns}{exc}") from None
            tables[key] = tuple(
                {k: np.asarray(v) for k, v in d.items()} for d in (g.arrays(), m.arrays(), serving)
            )
        return tables[key]

    per_row = [setup(row) for row in measurements.rows]
    gpu_t, model_t, serving_t = (
        {k: np.stack([r[i][k] for r in per_row]) for k in per_row[0][i]} for i in range(3)
    )
    col = measurements.column
    return RowInputs(
        gpu=gpu_t,
        model=model_t,
        serving=serving_t,
        concurrency=col("concurrency"),
        mean_context_tokens=col("mean_context_tokens"),
        prompt_tokens=col("prompt_tokens"),
        output_tokens=col("output_tokens"),
        replicas=np.where(np.isnan(col("replicas")), col("num_gpus") / col("tp"), col("replicas")),
    )


_SETUP_COLUMNS = {  # the columns a failed setup check is about, by error type
    InvalidParallelismError: "columns 'tp', 'num_gpus', 'expert_parallel', 'data_parallel': ",
    UnsupportedDtypeError: "column 'weight_dtype': ",
}


def sequence_lengths(inputs: RowInputs, assumed_prompt_tokens):
    """(L̄, r): mean tokens held per sequence and prefill tokens per output token, per row.

    A row's unknown prompt length takes `assumed_prompt_tokens` (scalar or (K,); may be a fitted value).
    """
    p = jnp.where(jnp.isnan(inputs.prompt_tokens), assumed_prompt_tokens, inputs.prompt_tokens)
    o = inputs.output_tokens
    known_o = ~jnp.isnan(o)
    safe_o = jnp.where(known_o, o, 1.0)
    from_lengths = p + 0.5 * safe_o
    mean_context = jnp.where(jnp.isnan(inputs.mean_context_tokens), from_lengths, inputs.mean_context_tokens)
    ratio = jnp.where(known_o, p / safe_o, 0.0)
    return mean_context, ratio


@functools.partial(jax.jit, static_argnames="calibrated")
def predict(inputs: RowInputs, mechanisms: dict, assumed_prompt_tokens, *, calibrated: bool = True) -> dict:
    """Predicted tokens/s, power (W), ITL (s), tokens per joule, KV tokens and `fits`, per row.

    `mechanisms` maps names of `sweep.physics.mechanisms.MECHANISMS` to scalars or (K,) arrays;
    absent names take their neutral value. `calibrated` selects the utilization power model, else
    the uncalibrated TDP-fraction one. Pure JAX: differentiable in `mechanisms` and the prompt.
    """
    mean_context, ratio = sequence_lengths(inputs, assumed_prompt_tokens)
    power_model = POWER_MODELS["utilization" if calibrated else "tdp_fraction"]
    serving = {
        **inputs.serving,
        **mechanisms,
        "prefill_tokens_per_output": ratio,
        "power_model": jnp.asarray(float(power_model)),
    }
    q = derive.derive_quantities(inputs.gpu, inputs.model, serving, convention="physical")
    profile = Profile(**{f: q[f] for f in Profile._fields})
    n = jnp.asarray(inputs.concurrency)
    tau_s = iteration_time_s(profile, n, mean_context)
    tokens_per_s = inputs.replicas * n / tau_s
    power_w = inputs.replicas * profile.tp * gpu_power_w(profile, n, mean_context)
    return {
        "tokens_per_second": tokens_per_s,
        "power_w": power_w,
        "itl_s": decode_time_s(profile, n, mean_context),
        "tokens_per_joule": tokens_per_s / power_w,
        "mean_context_tokens": mean_context,
        "kv_tokens": q["kv_tokens"],
        "fits": n * held_tokens(profile, mean_context) <= q["kv_tokens"],
    }


def held_tokens(profile: Profile, mean_context_tokens):
    """Whole-model KV tokens a sequence of L̄ tokens holds: (1 − s)·L̄ + s·min(L̄, w) (docs/models.md §6)."""
    return windowed_tokens(profile, mean_context_tokens, profile.kv_window_tokens)


def neutral_mechanisms() -> dict:
    """Every mechanism at its neutral value (the uncalibrated physical model)."""
    return {k: m.neutral for k, m in MECHANISMS.items()}
