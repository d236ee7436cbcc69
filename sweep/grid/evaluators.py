"""What the engine evaluates at each grid point: single-instance metrics, n_max, fleet metrics."""

from __future__ import annotations

from dataclasses import dataclass

import jax.numpy as jnp
import numpy as np

from sweep.fleet.sizing import fleet_metrics
from sweep.fleet.workload import Workload
from sweep.grid.engine import Evaluator
from sweep.physics.concurrency import concurrency_limits, exceeds_model_context
from sweep.physics.cost import cost_per_mtok
from sweep.physics.instance import evaluate

INSTANCE_OUTPUTS = (
    "concurrency",
    "iteration_time",
    "tokens_per_second",
    "gpu_power",
    "tokens_per_watt",
    "cost_per_mtok",
)
FLEET_OUTPUTS = (
    "fleet_tokens_per_watt",
    "fleet_power",
    "fleet_output_tokens_per_second",
    "cost_per_mtok",
    "ttft_p99",
)
POOL_OUTPUTS = (
    "instances",
    "traffic_share",
    "utilization",
    "active_sequences",
    "pool_power",
    "mean_service_time",
    "service_scv",
    "mean_output_tokens",
    "pool_ttft_p99",
)  # trailing `pool` dim


@dataclass(frozen=True)
class InstanceEvaluator(Evaluator):
    """Single-instance metrics (sweep.physics.instance.evaluate) on (profile, context, batch, …)."""

    convention: str

    @property
    def outputs(self):
        outputs = {k: (None, ()) for k in INSTANCE_OUTPUTS}
        outputs["bound"] = (np.int8, ())
        if self.convention == "physical":
            outputs["instance_power"] = (None, ())
        return outputs

    target = "tokens_per_watt"

    @property
    def pre(self):
        return ContextEvaluator()

    def __call__(self, profile, value, relaxed, extras, pre):
        n_max = pre["max_concurrency"].astype(profile.kv_blocks.dtype) if pre else None
        sequence_fits = pre["feasible"] > 0 if pre else None
        out = evaluate(
            profile,
            value("context"),
            value("batch"),
            value("mean_length_fraction"),
            value("load"),
            convention=self.convention,
            relaxed=relaxed,
            n_max=n_max,
            feasible=sequence_fits,
        )
        try:  # the grid's price_per_gpu_hour (axis or parameter), if given (known when tracing)
            price = value("price_per_gpu_hour")
        except KeyError:  # else the profile's (calibrated profile or GPU catalog)
            price = profile.price_per_gpu_hour
        # every GPU of the instance is paid for, in both conventions (as fleet grids count them)
        out["cost_per_mtok"] = cost_per_mtok(price * profile.tp, out["tokens_per_second"])
        return out


@dataclass(frozen=True)
class ContextEvaluator(Evaluator):
    """n_max, feasibility and the model's context limit: they depend on (profile, context) only.

    feasible = 1 where a sequence really fits, also where the paper convention clamps n_max to 1."""

    outputs = {
        "max_concurrency": (np.int64, ()),
        "feasible": (np.int8, ()),
        "exceeds_model_context": (np.int8, ()),
    }
    target = "max_concurrency"

    def __call__(self, profile, value, relaxed, extras, pre):
        n_max, feasible = concurrency_limits(profile, value("context"), relaxed=relaxed)
        beyond = exceeds_model_context(profile, value("context"))
        return {
            "max_concurrency": n_max,
            "feasible": feasible.astype(jnp.int8),
            "exceeds_model_context": beyond.astype(jnp.int8),
        }


@dataclass(frozen=True)
class FleetEvaluator(Evaluator):
    """Fleet metrics (sweep.fleet.sizing.fleet_metrics); extras = stacked workload (lengths, cum)."""

    convention: str

    @property
    def outputs(self):
        outputs = {v: (None, ()) for v in FLEET_OUTPUTS}
        outputs.update({v: (None, (2,)) for v in POOL_OUTPUTS})
        outputs["meets_slo"] = (np.int8, ())
        return outputs

    target = "fleet_tokens_per_watt"

    def __call__(self, profile, value, relaxed, extras, pre):
        index = value("workload").astype(jnp.int32)
        workload = Workload(extras[0][index], extras[1][index])
        lengths = "planner" if self.convention == "paper" else "exact"
        return fleet_metrics(
            profile,
            workload,
            value("arrival_rate"),
            value("topology").astype(jnp.int32),
            value("b_short"),
            value("gamma"),
            value("long_context"),
            value("ttft_p99_s"),
            value("rho_max"),
            value("output_share"),
            convention=self.convention,
            relaxed=relaxed,
            lengths=lengths,
        )
