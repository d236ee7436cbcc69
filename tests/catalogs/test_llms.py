"""Model catalog, parameter counting (paper and physical rules), KV bytes, HF import, dense family."""

import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import tomli_w

from sweep.catalogs.gpus import get_gpu
from sweep.catalogs.llms import (
    default_model_catalog,
    get_model,
    import_hf_config,
    load_model_catalog,
    model_arrays,
    model_table,
)
from sweep.catalogs.setups import serving_config
from sweep.errors import MissingFieldError, SweepInputError, UnknownNameError
from sweep.physics.architecture import (
    ARCH_FIELDS,
    dense_family,
    flops_per_token,
    kv_bytes_per_token,
    param_counts,
)
from sweep.physics.derive import derive_profile

# the published config.json files of tests/data/model-configs: gpt-oss, Llama-4, Gemma-3, Qwen3-Coder
SHARED_CONFIGS = [
    "gpt-oss-20b",
    "gpt-oss-120b",
    "llama-4-scout",
    "llama-4-maverick",
    "gemma-3-12b",
    "gemma-3-27b",
    "qwen3-coder-480b-a35b",
]
IDS = [
    "llama-3.1-8b",
    "llama-3.1-70b",
    "llama-3.1-405b",
    "qwen3-8b",
    "qwen3-14b",
    "qwen3-32b",
    "qwen3-30b-a3b",
    "qwen3-235b-a22b",
    "deepseek-v3",
    "mixtral-8x7b",
    *SHARED_CONFIGS,
]


def counts(name, rule):
    return {k: float(v) for k, v in param_counts(get_model(name).arrays(), rule).items()}


def test_catalog_ids_and_aliases():
    assert set(default_model_catalog().names()) == set(IDS)
    assert get_model("Qwen/Qwen3-235B-A22B").name == "qwen3-235b-a22b"
    assert get_model("META-LLAMA/LLAMA-3.1-70B-INSTRUCT").name == "llama-3.1-70b"
    for name in IDS:
        e = get_model(name)
        assert "config.json" in e.arch["n_layers"].source


def test_unknown_model_suggests():
    with pytest.raises(UnknownNameError, match="did you mean 'llama-3.1-70b'"):
        get_model("llama-3.1-7b")


def test_paper_rule_parameter_counts():
    # docs/models.md §2: vocab·h + L·(2h² + 2h·kvh·(h/H)) + L·3·h·I (dense) / L·E·3·h·I_moe (MoE).
    # 8B: 128256·4096 + 32·(2·4096² + 2·4096·8·128) + 32·3·4096·14336
    assert (
        counts("llama-3.1-8b", "paper")["total"]
        == 525_336_576 + 1_342_177_280 + 5_637_144_576
        == 7_504_658_432
    )
    # 70B: 1_050_673_152 + 80·150_994_944 + 80·704_643_072
    assert counts("llama-3.1-70b", "paper")["total"] == 69_501_714_432
    assert round(counts("llama-3.1-405b", "paper")["total"] / 1e9, 2) == 403.75
    # Qwen3-235B with the planner's head_dim = 4096/64 = 64:
    # 151936·4096 + 94·(2·4096² + 2·4096·4·64) + 94·128·3·4096·1536 ; active: top-8 instead of 128
    q = counts("qwen3-235b-a22b", "paper")
    assert q["total"] == 622_329_856 + 3_351_248_896 + 227_096_395_776 == 231_069_974_528
    assert q["active"] == 622_329_856 + 3_351_248_896 + 14_193_524_736 == 18_167_103_488


def test_physical_parameter_counts():
    # Llama-3.1-70B really stores 70.55 B (untied LM head + norms): 69_501_714_432 + 1_050_673_152 + 1_318_912
    assert counts("llama-3.1-70b", "physical")["total"] == 70_553_706_496
    assert counts("llama-3.1-8b", "physical")["total"] == 8_030_261_248  # HF model card: 8.03 B
    want = {  # (total, active) in billions, published model cards
        "llama-3.1-405b": (405.85, 405.85),
        "qwen3-8b": (8.19, 8.19),
        "qwen3-14b": (14.77, 14.77),  # Qwen3-14B model card: 14.8 B
        "qwen3-32b": (32.76, 32.76),
        "qwen3-30b-a3b": (30.53, 3.35),
        "qwen3-235b-a22b": (235.09, 22.19),
        "deepseek-v3": (671.03, 37.55),  # 671 B / 37 B (main model; the MTP module is not counted)
        "mixtral-8x7b": (46.70, 12.88),  # 46.7 B / 12.9 B
    }
    for name, (tot, act) in want.items():
        c = counts(name, "physical")
        assert c["total"] / 1e9 == pytest.approx(tot, abs=0.01), name
        assert c["active"] / 1e9 == pytest.approx(act, abs=0.01), name
    # streamed per decode step: active minus the input embedding table, LM head included
    c = counts("llama-3.1-70b", "physical")
    assert c["streamed"] == c["active"] - 128256 * 8192


def test_kv_bytes_per_token():
    def kv(name, rule, b=2.0):
        return float(kv_bytes_per_token(get_model(name).arrays(), b, rule))

    assert kv("llama-3.1-70b", "paper") == kv("llama-3.1-70b", "physical") == 2 * 80 * 8 * 128 * 2 == 327_680
    assert kv("qwen3-235b-a22b", "physical") == 2 * 94 * 4 * 128 * 2 == 192_512  # head_dim 128 from config
    assert kv("qwen3-235b-a22b", "paper") == 2 * 94 * 4 * 64 * 2 == 96_256  # planner's hidden/heads
    assert kv("deepseek-v3", "physical") == 61 * (512 + 64) * 2 == 70_272  # MLA latent + rope key
    assert kv("deepseek-v3", "physical", 1.0) == 35_136
    assert kv("qwen3-32b", "physical") == 2 * 64 * 8 * 128 * 2


def test_flops_per_token():
    m = get_model("qwen3-235b-a22b").arrays()
    assert float(flops_per_token(m, "paper")) == 2 * 18_167_103_488
    assert float(flops_per_token(m, "physical")) == 2 * counts("qwen3-235b-a22b", "physical")["streamed"]


def test_model_arrays_stack():
    arr = model_arrays([get_model(n) for n in IDS])
    assert arr["n_layers"].shape == (len(IDS),)
    c = param_counts(arr, "physical")
    assert np.allclose(np.asarray(c["total"]), [counts(n, "physical")["total"] for n in IDS], rtol=0, atol=0)


def test_paper_kernel_data_comes_from_the_data_file():
    q = get_model("qwen3-235b-a22b")
    assert q.paper_kernel["latency_s_per_layer"] == 0.48e-3 and q.paper_kernel["quality"] == "measured"
    assert q.paper_kernel["bandwidth_exponent"] == 0.7
    assert q.arch["paper_active_params"].value == 22e9
    assert get_model("mixtral-8x7b").paper_kernel["quality"] == "projected"
    assert get_model("llama-3.1-70b").paper_kernel == {}


# ---------------------------------------------------------------------------------------------
# Hugging Face config.json import

HF = {
    "llama-3.1-70b": {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": 8192,
        "intermediate_size": 28672,
        "num_attention_heads": 64,
        "num_hidden_layers": 80,
        "num_key_value_heads": 8,
        "vocab_size": 128256,
        "tie_word_embeddings": False,
        "max_position_embeddings": 131072,
        "rope_theta": 500000.0,
        "torch_dtype": "bfloat16",
    },
    "qwen3-235b-a22b": {
        "architectures": ["Qwen3MoeForCausalLM"],
        "model_type": "qwen3_moe",
        "hidden_size": 4096,
        "intermediate_size": 12288,
        "moe_intermediate_size": 1536,
        "num_attention_heads": 64,
        "num_hidden_layers": 94,
        "num_key_value_heads": 4,
        "head_dim": 128,
        "num_experts": 128,
        "num_experts_per_tok": 8,
        "decoder_sparse_step": 1,
        "mlp_only_layers": [],
        "vocab_size": 151936,
        "tie_word_embeddings": False,
        "max_position_embeddings": 40960,
    },
    "deepseek-v3": {
        "architectures": ["DeepseekV3ForCausalLM"],
        "model_type": "deepseek_v3",
        "hidden_size": 7168,
        "intermediate_size": 18432,
        "moe_intermediate_size": 2048,
        "num_attention_heads": 128,
        "num_hidden_layers": 61,
        "num_key_value_heads": 128,
        "n_routed_experts": 256,
        "n_shared_experts": 1,
        "num_experts_per_tok": 8,
        "first_k_dense_replace": 3,
        "kv_lora_rank": 512,
        "q_lora_rank": 1536,
        "qk_rope_head_dim": 64,
        "qk_nope_head_dim": 128,
        "v_head_dim": 128,
        "vocab_size": 129280,
        "tie_word_embeddings": False,
        "max_position_embeddings": 163840,
        "num_nextn_predict_layers": 1,
    },
    "mixtral-8x7b": {
        "architectures": ["MixtralForCausalLM"],
        "model_type": "mixtral",
        "hidden_size": 4096,
        "intermediate_size": 14336,
        "num_attention_heads": 32,
        "num_hidden_layers": 32,
        "num_key_value_heads": 8,
        "num_local_experts": 8,
        "num_experts_per_tok": 2,
        "vocab_size": 32000,
        "tie_word_embeddings": False,
        "max_position_embeddings": 32768,
    },
}


@pytest.mark.parametrize("name", list(HF))
def test_hf_import_round_trip(tmp_path, name):
    path = tmp_path / name / "config.json"
    path.parent.mkdir()
    path.write_text(json.dumps(HF[name]))
    imported = import_hf_config(path, name=f"my-{name}")
    ref = get_model(name)
    ia, ra = imported.arrays(), ref.arrays()
    for k in ra:
        if k.startswith("paper_"):
            continue
        assert float(ia[k]) == float(ra[k]), k
    # derive from the import, identical to the catalog model (physical convention)
    gpu, s = get_gpu("B200").arrays(), serving_config(tp=8)
    p_imp = derive_profile(gpu, ia, s, convention="physical")
    p_ref = derive_profile(gpu, ra, s, convention="physical")
    for f in p_ref._fields:
        assert float(getattr(p_imp, f)) == float(getattr(p_ref, f)), f
    assert float(p_imp.kv_blocks) > 0
    # saved as TOML and reloaded as a user catalog file
    toml = tmp_path / "user_models.toml"
    toml.write_text(tomli_w.dumps({"models": {imported.name: model_table(imported)}}))
    cat = load_model_catalog(extra_files=[toml])
    again = cat.get(f"my-{name}")
    for k in ra:
        assert float(again.arrays()[k]) == float(ia[k]), k


def test_hf_import_defaults_and_name(tmp_path):
    cfg = {k: v for k, v in HF["llama-3.1-70b"].items() if k not in ("num_key_value_heads",)}
    cfg["_name_or_path"] = "someorg/My-Model-7B"
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg))
    e = import_hf_config(path)
    assert e.name == "my-model-7b"
    assert e.value("n_kv_heads") == 64 and e.value("head_dim") == 128
    cat = load_model_catalog(hf_configs=[path])
    assert "my-model-7b" in cat


def test_hf_import_missing_required_field(tmp_path):
    cfg = dict(HF["llama-3.1-70b"])
    del cfg["num_hidden_layers"]
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg))
    with pytest.raises(MissingFieldError) as e:
        import_hf_config(path)
    assert isinstance(e.value, SweepInputError) and "num_hidden_layers" in str(e.value)
    assert "required:" in str(e.value) and "\n" not in str(e.value)
    path.write_text("{not json")
    with pytest.raises(SweepInputError, match="invalid JSON"):
        import_hf_config(path)
    with pytest.raises(SweepInputError, match="does not exist"):
        import_hf_config(tmp_path / "nope.json")


# ---------------------------------------------------------------------------------------------
# Published config.json files (tests/data/model-configs): gpt-oss, Llama-4, Gemma-3, Qwen3-Coder

CONFIGS = Path(__file__).resolve().parent.parent / "data" / "model-configs"


@pytest.mark.parametrize("name", SHARED_CONFIGS)
def test_published_config_import_equals_catalog(name):
    imported = import_hf_config(CONFIGS / f"{name}.json", name=name).field_values()
    ref = get_model(name).field_values()
    for k in ARCH_FIELDS:
        assert imported[k] == ref[k], k


def test_published_config_parameter_counts():
    # (total, active) in billions, published. Text model only: Llama-4's 109 B / 400 B and Gemma-3's
    # model cards include the vision encoder (Scout text-only: 107.8 B).
    want = {
        "gpt-oss-20b": (20.91, 3.61),
        "gpt-oss-120b": (116.83, 5.13),
        "llama-4-scout": (109.0, 17.0),
        "llama-4-maverick": (400.0, 17.0),
        "qwen3-coder-480b-a35b": (480.0, 35.0),
        "gemma-3-12b": (11.8, 11.8),
        "gemma-3-27b": (27.0, 27.0),
    }
    for name, (tot, act) in want.items():
        c = counts(name, "physical")
        assert c["total"] / 1e9 == pytest.approx(tot, rel=0.02), name
        # OpenAI's model card counts active parameters without the input embedding table (active MLP
        # + attention + unembedding): our `streamed`; the other cards count the embedding in.
        active = c["streamed"] if name.startswith("gpt-oss") else c["active"]
        assert active / 1e9 == pytest.approx(act, rel=0.02), name
    # gpt-oss: what the rule leaves out is the expert, router and o_proj biases and the attention sinks
    # (OpenAI's 116.83 B has them): 36·(128·(2·2880 + 2880) + 128 + 2880 + 64) = 39_920_832
    assert counts("gpt-oss-120b", "physical")["total"] + 39_920_832 == pytest.approx(116.83e9, abs=0.005e9)
    assert counts("gpt-oss-120b", "physical")["active"] - counts("gpt-oss-120b", "physical")["streamed"] == (
        201088 * 2880
    )


def test_published_config_layer_types():
    fields = (
        "n_window_layers",
        "attention_window_tokens",
        "chunked_attention",
        "n_dense_layers",
        "n_shared_experts",
        "shared_intermediate_size",
        "mxfp4_experts",
        "tie_word_embeddings",
        "qk_norm",
        "attention_bias",
    )
    want = {
        "gpt-oss-20b": (12, 128, 0, 0, 0, 0, 1, 0, 0, 1),
        "gpt-oss-120b": (18, 128, 0, 0, 0, 0, 1, 0, 0, 1),
        "llama-4-scout": (36, 8192, 1, 0, 1, 8192, 0, 0, 0, 0),
        "llama-4-maverick": (36, 8192, 1, 24, 1, 8192, 0, 0, 0, 0),
        "gemma-3-12b": (40, 1024, 0, 0, 0, 0, 0, 1, 1, 0),
        "gemma-3-27b": (52, 1024, 0, 0, 0, 0, 0, 1, 1, 0),
        "qwen3-coder-480b-a35b": (0, 0, 0, 0, 0, 0, 0, 0, 1, 0),
    }
    for name, values in want.items():
        e = import_hf_config(CONFIGS / f"{name}.json", name=name)
        assert {k: e.value(k) for k in fields} == dict(zip(fields, values)), name
    scout, maverick = get_model("llama-4-scout"), get_model("llama-4-maverick")
    assert scout.value("moe_intermediate_size") == maverick.value("moe_intermediate_size") == 8192
    assert scout.value("intermediate_size") == maverick.value("intermediate_size") == 16384  # dense FFN


def test_served_ids_resolve():
    served = {
        "openai/gpt-oss-20b": "gpt-oss-20b",
        "gpt-oss-20b": "gpt-oss-20b",
        "openai/gpt-oss-120b": "gpt-oss-120b",
        "meta-llama/Llama-4-Scout-17B-16E-Instruct": "llama-4-scout",
        "meta-llama/Llama-4-Scout-17B-16E": "llama-4-scout",
        "Llama-4-Scout": "llama-4-scout",
        "meta-llama/Llama-4-Maverick-17B-128E-Instruct": "llama-4-maverick",
        "meta-llama/Llama-4-Maverick-17B-128E-Instruct-FP8": "llama-4-maverick",
        "meta-llama/Llama-4-Maverick-17B-128E": "llama-4-maverick",
        "google/gemma-3-12b-it": "gemma-3-12b",
        "google/gemma-3-12b-pt": "gemma-3-12b",
        "google/gemma-3-27b-it": "gemma-3-27b",
        "google/gemma-3-27b-pt": "gemma-3-27b",
        "Qwen/Qwen3-Coder-480B-A35B-Instruct": "qwen3-coder-480b-a35b",
        "Qwen/Qwen3-Coder-480B-A35B-Instruct-FP8": "qwen3-coder-480b-a35b",
        "deepseek-ai/DeepSeek-V3.1": "deepseek-v3",
        "deepseek-ai/DeepSeek-R1": "deepseek-v3",
        "deepseek-ai/DeepSeek-R1-0528": "deepseek-v3",
        "DeepSeek-R1": "deepseek-v3",
        "DeepSeek-V3.1": "deepseek-v3",
        "Qwen/Qwen3-Coder-30B-A3B-Instruct": "qwen3-30b-a3b",
        "Qwen/Qwen3-30B-A3B-Instruct-2507": "qwen3-30b-a3b",
        "Qwen/Qwen3-30B-A3B-Thinking-2507": "qwen3-30b-a3b",
        "Qwen/Qwen3-235B-A22B-Instruct-2507": "qwen3-235b-a22b",
        "Qwen/Qwen3-235B-A22B-Thinking-2507": "qwen3-235b-a22b",
        "Qwen/Qwen3-235B-A22B-FP8": "qwen3-235b-a22b",
        "Qwen/Qwen3-235B-A22B-Instruct-2507-FP8": "qwen3-235b-a22b",
        "meta-llama/Llama-3.3-70B-Instruct": "llama-3.1-70b",
        "Llama-3.3-70B": "llama-3.1-70b",
    }
    cat = default_model_catalog()
    for served_id, name in served.items():
        assert cat.get(served_id).name == name, served_id
        assert cat.get(served_id.upper()).name == name, served_id


def test_aliases_name_one_model_each():
    owner = {}
    for e in default_model_catalog().entries.values():
        for a in {e.name.lower(), *(a.lower() for a in e.aliases)}:
            assert owner.setdefault(a, e.name) == e.name, f"'{a}' names {owner[a]} and {e.name}"


def _import(tmp_path, cfg, name="m"):
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(cfg))
    return import_hf_config(path, name=name)


def test_hf_import_local_attention_variants(tmp_path):
    llama4 = json.loads((CONFIGS / "llama-4-maverick.json").read_text())
    text = llama4["text_config"]
    # no no_rope_layers: transformers' default, every 4th layer global
    e = _import(tmp_path, {**llama4, "text_config": {k: v for k, v in text.items() if k != "no_rope_layers"}})
    assert (e.value("n_window_layers"), e.value("chunked_attention")) == (36, 1)
    # no attention_chunk_size: all layers global
    e = _import(tmp_path, {**llama4, "text_config": {**text, "attention_chunk_size": None}})
    assert (e.value("n_window_layers"), e.value("attention_window_tokens"), e.value("chunked_attention")) == (
        0,
        0,
        0,
    )
    # layer_types (newer transformers) win; moe_layers lists the MoE layers
    types = ["chunked_attention", "full_attention"] * 24
    e = _import(tmp_path, {**llama4, "text_config": {**text, "layer_types": types, "moe_layers": [3, 7, 99]}})
    assert (e.value("n_window_layers"), e.value("attention_window_tokens")) == (24, 8192)
    assert e.value("n_dense_layers") == 46
    # Gemma-3: pattern 4 -> 12 global of 48; an explicit untied head is kept
    gemma = json.loads((CONFIGS / "gemma-3-12b.json").read_text())
    e = _import(
        tmp_path,
        {
            **gemma,
            "text_config": {
                **gemma["text_config"],
                "sliding_window_pattern": 4,
                "tie_word_embeddings": False,
            },
        },
    )
    assert (e.value("n_window_layers"), e.value("tie_word_embeddings")) == (36, 0)
    # sliding layers without a window
    gpt = json.loads((CONFIGS / "gpt-oss-20b.json").read_text())
    with pytest.raises(MissingFieldError, match="sliding_window"):
        _import(tmp_path, {**gpt, "sliding_window": None})
    with pytest.raises(MissingFieldError, match="attention_window_tokens"):
        load_model_catalog(
            inline={"w": {**model_table(get_model("gpt-oss-20b")), "attention_window_tokens": 0}}
        )
    # all-full layer_types (Qwen3 configs of newer transformers): no local layers
    e = _import(
        tmp_path, {**HF["qwen3-235b-a22b"], "layer_types": ["full_attention"] * 94, "sliding_window": None}
    )
    assert e.value("n_window_layers") == 0


def test_hf_import_shared_expert_width(tmp_path):
    qwen = json.loads((CONFIGS / "qwen3-coder-480b-a35b.json").read_text())
    e = _import(tmp_path, qwen)
    assert (e.value("n_shared_experts"), e.value("shared_intermediate_size")) == (0, 0)
    e = _import(tmp_path, {**qwen, "model_type": "qwen2_moe", "shared_expert_intermediate_size": 20480})
    assert (e.value("n_shared_experts"), e.value("shared_intermediate_size")) == (1, 20480)
    assert e.value("attention_bias") == 1
    gpt = json.loads((CONFIGS / "gpt-oss-20b.json").read_text())
    e = _import(tmp_path, {**gpt, "quantization_config": {"quant_method": "fp8"}, "attention_bias": False})
    assert (e.value("mxfp4_experts"), e.value("attention_bias")) == (0, 0)


def test_user_model_missing_field_inline():
    with pytest.raises(MissingFieldError, match="vocab_size"):
        load_model_catalog(
            inline={"m": {"n_layers": 2, "hidden_size": 64, "n_heads": 4, "intermediate_size": 128}}
        )


# ---------------------------------------------------------------------------------------------
# Dense family parameterised by parameter count


@pytest.mark.parametrize("n", [1e9, 8.03e9, 70e9, 405e9])
def test_dense_family_hits_the_parameter_count(n):
    m = dense_family(n)
    assert float(param_counts(m, "physical")["total"]) == pytest.approx(n, rel=1e-12)
    assert float(m["n_layers"]) == pytest.approx(float(m["hidden_size"]) / 128)


def test_dense_family_matches_llama_8b_shape_and_is_differentiable():
    m = dense_family(8_030_261_248.0)  # Llama-3.1-8B: hidden 4096, 32 layers, FFN 14336
    assert float(m["hidden_size"]) == pytest.approx(4096, rel=1e-9)
    assert float(m["n_layers"]) == pytest.approx(32, rel=1e-9)
    assert float(m["intermediate_size"]) == pytest.approx(14336, rel=1e-9)
    g = jax.grad(lambda n: param_counts(dense_family(n), "physical")["total"])(jnp.asarray(30e9))
    assert float(g) == pytest.approx(1.0, rel=1e-9)
    # vectorised over sizes, usable by derive_profile
    ms = dense_family(jnp.array([1e9, 10e9, 100e9]))
    p = derive_profile(get_gpu("H100").arrays(), ms, serving_config(tp=1), convention="physical")
    assert p.weight_time_s.shape == (3,) and np.all(np.diff(np.asarray(p.weight_time_s)) > 0)


def test_dense_family_integer_option():
    m = dense_family(70e9, integer=True)
    assert float(m["hidden_size"]) % 1024 == 0 and float(m["n_layers"]).is_integer()
    assert float(m["n_heads"]).is_integer()
    assert float(param_counts(m, "physical")["total"]) == pytest.approx(70e9, rel=0.15)
