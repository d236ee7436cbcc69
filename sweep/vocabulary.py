"""The project's fixed vocabularies, each defined once: names a user may write, and their codes.

Integer codes are what the compiled kernels see (a Profile's `power_model`, a fleet grid's
`topology` axis); the names are what grids, the CLI and the outputs use.
"""

CONVENTIONS = ("paper", "physical")  # docs/models.md §5
QUALITIES = ("measured", "calibrated", "projected")  # provenance of a catalog value
POWER_MODELS = {
    "logistic": 0,
    "tdp_fraction": 1,
    "utilization": 2,
}  # docs/models.md §1, §2; docs/calibration.md
TOPOLOGIES = {"homogeneous": 0, "pool": 1, "fleetopt": 2}  # docs/models.md §3
POOLS = ("short", "long")  # the two pools of a routed fleet, in the order of the `pool` dim
WEIGHT_DTYPE_BYTES = {"bf16": 2.0, "fp16": 2.0, "fp8": 1.0, "int4": 0.5, "mxfp4": (4 + 8 / 32) / 8}
# mxfp4: 4-bit values with one 8-bit scale per 32 (4.25 bits); it applies to the routed experts of a
# checkpoint that stores them so (model field mxfp4_experts), the rest stays at 16 bit (docs/models.md §6)
TASKS = ("lm-arena-chat", "gpqa", "sourcegraph-fim")  # measurement tasks (ML.ENERGY v3); blank = chat
KV_DTYPE_BYTES = {"bf16": 2.0, "fp16": 2.0, "fp8": 1.0}
CALIBRATION_GROUPS = (
    "gpu",
    "gpu,model",
)  # `sweep calibrate --per`: one parameter set per GPU or per GPU and model
BATCH_MAX = 0  # encoding of batch = "max" in the integer batch coordinate
REFINEMENT_STATUS = {
    -1: "infeasible",
    0: "not_confirmed",
    1: "refined",
    2: "at_bound",
    3: "flat",
}  # sweep.refine
OPTIMUM_FLAGS = {
    "b_short_at_grid_edge": 1,
    "gamma_at_grid_edge": 2,
    "gamma_at_max_compression": 4,
    "empty_pool": 8,
}
