"""Roofline (first-principles) grids end to end: elasticities against finite differences of the
relaxed model for every reported parameter, and physical-convention facts through `sweep.run`."""

import functools
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sweep
from sweep.catalogs import setups
from sweep.catalogs.gpus import GPU_FIELDS, default_gpu_catalog
from sweep.catalogs.llms import default_model_catalog
from sweep.errors import SweepInputError
from sweep.physics import derive as _derive
from sweep.physics.architecture import param_counts
from sweep.physics.instance import evaluate
from sweep.physics.roofline import compute_time_s, kv_time_s

GPUS = ["H100", "B200", "A100"]
MODELS = ["llama-3.1-8b", "qwen3-8b"]
TPS = [1, 2]
CONTEXTS = [2048, 32768]
BATCHES = [4, "max"]
REL_STEP = 1e-6
TOL = 1e-6


def roofline_spec(convention: str) -> dict:
    return {
        "convention": convention,
        "profile": "roofline",
        "elasticities": True,
        "axes": {"gpu": GPUS, "model": MODELS, "tp": TPS, "context": CONTEXTS, "batch": BATCHES},
    }


@pytest.fixture(scope="module", params=["physical", "paper"])
def elastic(request):
    return request.param, sweep.run(roofline_spec(request.param))


@functools.cache
def _relaxed_tpw(convention: str):
    """tokens/W of the relaxed model: derive_profile(relaxed) → evaluate(relaxed); jit-compiled."""

    def f(gpu, model, serving, context, batch):
        profile = _derive.derive_profile(gpu, model, serving, convention=convention, relaxed=True)
        out = evaluate(profile, context, batch, 0.5, 1.0, convention=convention, relaxed=True)
        return out["tokens_per_watt"], profile

    return jax.jit(f)


def _finite_difference_elasticities(convention, gpu_name, model_name, tp, parameters):
    """Central differences d ln(tok/W)/d ln θ, one perturbed row per (parameter, ±h), vectorised.

    Returns {parameter: array (context, batch)} and the unperturbed relaxed profile; NaN-valued
    parameters (absent specs, e.g. fp8 FLOPS on A100) map to None.
    """
    gpu = {k: jnp.asarray(v) for k, v in default_gpu_catalog().get(gpu_name).arrays().items()}
    model = {k: jnp.asarray(v) for k, v in default_model_catalog().get(model_name).arrays().items()}
    serving = setups.serving_config(tp=tp)
    groups = {"gpu": gpu, "serving": serving}
    where = {p: ("gpu" if p in GPU_FIELDS else "serving") for p in parameters}
    n_rows = 2 * len(parameters) + 1  # rows 2j, 2j+1: parameter j up/down; last row: base
    perturbed = {}
    for group, values in groups.items():
        out = {}
        for key, value in values.items():
            column = np.full(n_rows, float(value))
            for j, p in enumerate(parameters):
                if where[p] == group and p == key and np.isfinite(float(value)):
                    column[2 * j] = float(value) * (1 + REL_STEP)
                    column[2 * j + 1] = float(value) * (1 - REL_STEP)
            out[key] = jnp.asarray(column).reshape(-1, 1, 1)
        perturbed[group] = out
    context = jnp.asarray(CONTEXTS, jnp.float64).reshape(1, -1, 1)
    batch = jnp.asarray([0.0 if b == "max" else float(b) for b in BATCHES]).reshape(1, 1, -1)
    tpw, profile = _relaxed_tpw(convention)(perturbed["gpu"], model, perturbed["serving"], context, batch)
    tpw = np.asarray(tpw)
    base = tpw[-1]
    fd = {}
    for j, p in enumerate(parameters):
        value = float(groups[where[p]][p])
        fd[p] = None if not np.isfinite(value) else (tpw[2 * j] - tpw[2 * j + 1]) / (2 * REL_STEP) / base
    base_profile = jax.tree.map(lambda x: np.asarray(x)[-1:], profile)
    return fd, base_profile


def test_reported_parameters(elastic):
    convention, ds = elastic
    names = list(ds.parameter.values)
    for expected in (
        "hbm_bandwidth_bytes_per_s",
        "memory_bytes",
        "fp16_flops",
        "tdp_w",
        "gpu_memory_utilization",
    ):
        assert expected in names
    assert ds.elasticity.dims[0] == "parameter"
    assert "relaxation" in ds.attrs["elasticity_method"]
    assert np.isfinite(ds.elasticity.values).all()


@pytest.mark.parametrize("gpu", GPUS)
def test_every_elasticity_matches_central_differences(elastic, gpu):
    convention, ds = elastic
    parameters = [str(p) for p in ds.parameter.values]
    failures = []
    for model in MODELS:
        for tp in TPS:
            cell = ds.sel(gpu=gpu, model=model, tp=tp)
            # stay away from kinks: batch 4 well below n_max, memory bound, power activity not at 1
            assert (cell.max_concurrency > 8).all()
            assert (cell.bound == 0).all()
            fd, profile = _finite_difference_elasticities(convention, gpu, model, tp, parameters)
            n_max = cell.max_concurrency.values[:, None].astype(float)
            n = np.where(np.asarray(BATCHES) == "max", n_max, np.minimum(4.0, n_max))
            mean_len = 0.5 * np.asarray(CONTEXTS, float)[:, None]
            kv = np.asarray(kv_time_s(profile, jnp.asarray(n), jnp.asarray(mean_len)))
            busy = np.asarray(profile.power_weight_time_s) + kv
            activity = (kv + np.asarray(compute_time_s(profile, jnp.asarray(n)))) / busy
            assert (np.abs(activity - 1) > 1e-4).all(), activity
            for p in parameters:
                got = cell.elasticity.sel(parameter=p).transpose("context", "batch").values
                if fd[p] is None:  # absent spec (NaN): it cannot move tokens/W
                    if not np.all(got == 0):
                        failures.append((model, tp, p, got.tolist(), 0.0))
                    continue
                err = np.abs(got - fd[p]) / np.maximum(1.0, np.abs(fd[p]))
                if not np.all(err < TOL):
                    failures.append((model, tp, p, got.tolist(), fd[p].tolist()))
    assert not failures, (
        f"{convention}/{gpu}: elasticity != finite difference (model, tp, parameter, got, fd): {failures}"
    )


def test_memory_moves_tokens_per_watt_at_full_concurrency(elastic):
    """At batch "max" more KV memory means more sequences: d ln(tok/W)/d ln(memory) > 0."""
    convention, ds = elastic
    e = ds.elasticity.sel(parameter="memory_bytes", batch=0)
    assert (e > 0).all(), e.values
    # a fixed batch below n_max does not depend on the memory size
    assert (ds.elasticity.sel(parameter="memory_bytes", batch=4) == 0).all()


# ---------------------------------------------------------------------------------------------
# physical-convention facts


def test_405b_fp16_tp8_on_h100_is_infeasible():
    ds = sweep.run(
        {
            "convention": "physical",
            "profile": "roofline",
            "tp": 8,
            "weight_dtype": "fp16",
            "axes": {
                "gpu": ["H100", "H200"],
                "model": ["llama-3.1-405b"],
                "context": [8192],
                "batch": [4, "max"],
            },
        }
    )
    h100 = ds.sel(gpu="H100", model="llama-3.1-405b")
    assert int(h100.feasible.item()) == 0
    assert int(h100.max_concurrency.item()) == 0
    assert np.isnan(h100.tokens_per_watt.values).all()
    assert np.isnan(h100.tokens_per_second.values).all()
    # 8 x 141 GiB holds 810 GB of weights: feasible on H200
    h200 = ds.sel(gpu="H200", model="llama-3.1-405b")
    assert int(h200.feasible.item()) == 1
    assert np.isfinite(h200.tokens_per_watt.values).all()


def test_physical_power_counts_every_gpu():
    spec = {
        "profile": "roofline",
        "tp": 8,
        "axes": {"gpu": ["H100"], "model": ["llama-3.1-70b"], "context": [8192], "batch": [16]},
    }
    ds = sweep.run({**spec, "convention": "physical"})
    np.testing.assert_allclose(ds.instance_power.values, 8 * ds.gpu_power.values, rtol=1e-12)
    np.testing.assert_allclose(
        ds.tokens_per_watt.values, ds.tokens_per_second.values / ds.instance_power.values, rtol=1e-12
    )


LLAMA_8B_CONFIG = {
    "_name_or_path": "my-org/My-Llama-8B",
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "hidden_size": 4096,
    "intermediate_size": 14336,
    "num_attention_heads": 32,
    "num_hidden_layers": 32,
    "num_key_value_heads": 8,
    "head_dim": 128,
    "vocab_size": 128256,
    "tie_word_embeddings": False,
    "max_position_embeddings": 131072,
    "torch_dtype": "bfloat16",
}


def test_imported_config_matches_catalog_model(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(LLAMA_8B_CONFIG))
    axes = {"gpu": ["H100"], "tp": [1, 2], "context": [4096, 32768], "batch": [8, "max"]}
    imported = sweep.run(
        {"profile": "roofline", "model_configs": [str(path)], "axes": {**axes, "model": ["my-llama-8b"]}}
    )
    catalog = sweep.run({"profile": "roofline", "axes": {**axes, "model": ["llama-3.1-8b"]}})
    assert list(imported.model.values) == ["my-llama-8b"]
    for var in ("max_concurrency", "tokens_per_second", "gpu_power", "tokens_per_watt"):
        np.testing.assert_allclose(imported[var].values, catalog[var].values, rtol=1e-12)


MISTRAL_7B_CONFIG = {  # Mistral-7B-v0.1's config.json: a 32K window
    "_name_or_path": "mistralai/Mistral-7B-v0.1",
    "architectures": ["MistralForCausalLM"],
    "model_type": "mistral",
    "hidden_size": 4096,
    "intermediate_size": 14336,
    "num_attention_heads": 32,
    "num_hidden_layers": 32,
    "num_key_value_heads": 8,
    "vocab_size": 32000,
    "tie_word_embeddings": False,
    "max_position_embeddings": 32768,
    "torch_dtype": "bfloat16",
}


def test_context_beyond_an_imported_models_window_is_flagged(tmp_path):
    """Same grid shape as the test above (one compiled kernel): a 32K model asked for 64K."""
    path = tmp_path / "config.json"
    path.write_text(json.dumps(MISTRAL_7B_CONFIG))
    axes = {"gpu": ["H100"], "tp": [1, 2], "context": [4096, 65536], "batch": [8, "max"]}
    grid = {
        "profile": "roofline",
        "model_configs": [str(path)],
        "axes": {**axes, "model": ["mistral-7b-v0.1"]},
    }
    said = r"model 'mistral-7b-v0\.1' supports at most 32768 context tokens \(max_context_tokens\); context 65536"
    with pytest.warns(sweep.SweepWarning, match=said):
        ds = sweep.run(grid)
    assert ds.exceeds_model_context.dims == ("gpu", "model", "tp", "context")
    assert ds.exceeds_model_context.values.reshape(2, 2).tolist() == [[0, 1], [0, 1]]
    assert np.isnan(ds.tokens_per_watt.sel(context=65536)).all()
    assert np.isfinite(ds.tokens_per_watt.sel(context=4096)).all()
    assert ds.parameters.item() == pytest.approx(7.24e9, rel=1e-3)  # Mistral-7B: 7.24 B parameters
    # cost from the GPU catalog's price (H100: $4.02 per GPU-hour) × TP
    tokens_per_s = ds.tokens_per_second.sel(context=4096)
    want = 4.02 * ds.tp / (tokens_per_s * 3600) * 1e6
    np.testing.assert_allclose(
        ds.cost_per_mtok.sel(context=4096), want.transpose(*tokens_per_s.dims), rtol=1e-12
    )


H100_LIKE = {
    "memory_bytes": 85899345920,
    "hbm_bandwidth_bytes_per_s": 3.35e12,
    "fp16_flops": 989e12,
    "fp8_flops": 1978e12,
    "tdp_w": 700,
    "price_per_gpu_hour": 4.02,
    "prefill_chunk_tokens": 1024,
}


def test_inline_gpu():
    axes = {"model": ["llama-3.1-8b"], "context": [8192], "batch": [8, "max"]}
    ds = sweep.run(
        {
            "profile": "roofline",
            "gpus": {"X100": H100_LIKE, "X200": {**H100_LIKE, "hbm_bandwidth_bytes_per_s": 6.7e12}},
            "axes": {**axes, "gpu": ["H100", "X100", "X200"]},
        }
    )
    assert list(ds.gpu.values) == ["H100", "X100", "X200"]
    for var in ("max_concurrency", "tokens_per_second", "tokens_per_watt"):
        np.testing.assert_allclose(ds[var].sel(gpu="X100").values, ds[var].sel(gpu="H100").values, rtol=1e-12)
    faster = ds.tokens_per_second.sel(gpu="X200") / ds.tokens_per_second.sel(gpu="X100")
    assert (faster > 1.5).all() and (faster <= 2.0 + 1e-12).all()


def test_dense_family_names_and_range():
    ds = sweep.run(
        {
            "profile": "roofline",
            "tp": 8,
            "axes": {
                "gpu": ["H100"],
                "model": ["dense-13b", "llama-3.1-70b"],
                "context": [8192],
                "batch": [4, "max"],
            },
        }
    )
    assert list(ds.model.values) == ["dense-13b", "llama-3.1-70b"]
    # the model sizes as coordinates: the dense family's integer shapes count a little over 13 B
    dense = float(param_counts(sweep.dense_family(13e9, integer=True), "physical")["total"])
    np.testing.assert_allclose(ds.parameters.values, [dense, 70.55e9], rtol=1e-3)
    np.testing.assert_array_equal(ds.active_parameters.values, ds.parameters.values)  # dense models
    assert ds.exceeds_model_context.values.max() == 0  # the dense family has no known window
    tpw = ds.tokens_per_watt.sel(gpu="H100", context=8192)
    assert np.isfinite(tpw.values).all()
    assert (tpw.sel(model="dense-13b") > tpw.sel(model="llama-3.1-70b")).all()

    ranged = sweep.run(
        {
            "profile": "roofline",
            "tp": 8,
            "axes": {
                "gpu": ["H100"],
                "context": [8192],
                "batch": [4],
                "model": {"dense_params": {"start": 1e9, "stop": 1e11, "num": 3, "spacing": "geometric"}},
            },
        }
    )
    assert list(ranged.model.values) == ["dense-1b", "dense-10b", "dense-100b"]
    values = ranged.tokens_per_watt.sel(gpu="H100", context=8192, batch=4).values
    assert np.all(np.diff(values) < 0), values  # bigger models: fewer tokens per joule
    # a range-generated name is the same model as the literal name
    literal = sweep.run(
        {
            "profile": "roofline",
            "tp": 8,
            "axes": {"gpu": ["H100"], "context": [8192], "batch": [4], "model": ["dense-10b"]},
        }
    )
    np.testing.assert_allclose(
        literal.tokens_per_watt.values.ravel(),
        ranged.tokens_per_watt.sel(model=["dense-10b"]).values.ravel(),
        rtol=1e-12,
    )


def _error(spec) -> str:
    with pytest.raises(SweepInputError) as info:
        sweep.run(spec)
    assert isinstance(info.value, ValueError)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_fp8_on_a100_is_refused(tmp_path):
    grid = tmp_path / "fp8.toml"
    grid.write_text(
        'profile = "roofline"\nweight_dtype = "fp8"\n[axes]\ngpu = ["A100"]\n'
        'model = ["llama-3.1-8b"]\ncontext = [8192]\n'
    )
    message = _error(grid)
    assert str(grid) in message
    assert "weight_dtype" in message and "A100" in message and "bf16" in message
    # fp8 on H100 is fine
    sweep.run(
        {
            "profile": "roofline",
            "weight_dtype": "fp8",
            "axes": {"gpu": ["H100"], "model": ["llama-3.1-8b"], "context": [8192]},
        }
    )


def test_tp_not_dividing_heads_is_refused():
    message = _error(
        {
            "profile": "roofline",
            "axes": {"gpu": ["H100"], "model": ["llama-3.1-8b"], "tp": [1, 3], "context": [8192]},
        }
    )
    assert "tp" in message and "llama-3.1-8b" in message
    assert "allowed tp: 1, 2, 4, 8" in message


def test_unknown_gpu_suggests_close_names():
    message = _error(
        {"profile": "roofline", "axes": {"gpu": ["H10O"], "model": ["llama-3.1-8b"], "context": [8192]}}
    )
    assert "H10O" in message
    assert "did you mean" in message and "H100" in message.split("? known")[0]
