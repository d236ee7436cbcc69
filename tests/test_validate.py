"""Regression tests for issue #8: every nonsense number is a one-line `SweepInputError`."""

import json
import math

import pytest

import sweep
from sweep import SweepInputError
from sweep.catalogs.llms import import_hf_config
from sweep.cli import main
from sweep.fleet.workload import load_workload
from sweep.grid.spec import parse

BASE = {"axes": {"gpu": ["H100"], "model": ["llama-3.1-70b"], "context": [4096]}}
PROFILE = {
    "gpu": "X1",
    "model": "m1",
    "tp": 8,
    "weight_time_s": 4e-3,
    "kv_time_per_seq_s": 0.32e-3,
    "calibration_context": 8192,
    "kv_block_tokens": 16,
    "kv_blocks": 65536,
    "max_slots": 256,
    "power_idle_w": 300.0,
    "power_nominal_w": 600.0,
    "power_k": 1.0,
    "power_x0": 4.2,
}
GPU = {
    "memory_bytes": 80e9,
    "hbm_bandwidth_bytes_per_s": 3e12,
    "fp16_flops": 1e15,
    "tdp_w": 700,
    "price_per_gpu_hour": 1.0,
    "prefill_chunk_tokens": 1024,
}
CONFIG = {
    "num_hidden_layers": 32,
    "hidden_size": 4096,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "intermediate_size": 14336,
    "vocab_size": 128256,
}
FLEET = {
    "topology": "homogeneous",
    "axes": {"gpu": ["H100"], "model": ["llama-3.1-70b"], "workload": ["azure"]},
}


def one_line_error(match, run):
    with pytest.raises(SweepInputError, match=match) as e:
        run()
    assert len(str(e.value).splitlines()) == 1
    return str(e.value)


def with_profile(**changes):
    return {"axes": {"gpu": ["X1"], "model": ["m1"], "context": [4096]}, "profiles": [{**PROFILE, **changes}]}


@pytest.mark.parametrize(
    "changes, match",
    [
        ({"weight_time_s": math.nan}, r"profiles\[0\].*weight_time_s: got nan; allowed: finite numbers"),
        ({"power_k": math.nan}, r"power_k: got nan; allowed: finite numbers"),
        ({"power_idle_w": -300.0}, r"power_idle_w: got -300\.0; allowed: finite numbers >= 0"),
        (
            {"power_idle_w": 0.0, "power_nominal_w": 0.0},
            r"power_nominal_w: got 0\.0; allowed: finite numbers > 0",
        ),
        (
            {"power_nominal_w": 200.0},
            r"power_nominal_w: 200\.0 is below power_idle_w = 300\.0; "
            r"allowed: power_idle_w <= power_nominal_w",
        ),
        ({"tp": 2.5}, r"tp: got 2\.5; allowed: finite integers > 0"),
        ({"kv_blocks": 100.5}, r"kv_blocks: got 100\.5; allowed: finite integers > 0"),
        ({"kv_block_tokens": 16.5}, r"kv_block_tokens: got 16\.5"),
        ({"price_per_gpu_hour": -1.0}, r"price_per_gpu_hour: got -1\.0; allowed: finite numbers >= 0"),
        ({"uncertainty": -0.2}, r"uncertainty: got -0\.2; allowed: finite numbers >= 0"),
        ({"power_x0": math.inf}, r"power_x0: got inf; allowed: finite numbers"),
    ],
)
def test_inline_profile_values(changes, match):
    one_line_error(match, lambda: sweep.run(with_profile(**changes)))


def test_inline_profile_error_exits_2_on_the_cli(tmp_path, capsys):
    grid = tmp_path / "g.toml"
    grid.write_text(
        '[axes]\ngpu = ["X1"]\nmodel = ["m1"]\ncontext = [4096]\n[[profiles]]\n'
        + "".join(f"{k} = {json.dumps(v)}\n" for k, v in {**PROFILE, "power_k": 0}.items()).replace(
            "power_k = 0", "power_k = nan"
        )
    )
    assert main(["run", str(grid), "-o", str(tmp_path / "o.nc")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("sweep: error: ") and str(grid) in err and "power_k: got nan" in err


def import_config(tmp_path, **changes):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({**CONFIG, **changes}))
    return import_hf_config(path, name="m")


@pytest.mark.parametrize(
    "changes, match",
    [
        ({"intermediate_size": -14336}, r"intermediate_size: got -14336\.0; allowed: finite integers > 0"),
        ({"hidden_size": math.nan}, r"hidden_size: got nan; allowed: finite numbers"),
        ({"vocab_size": math.inf}, r"vocab_size: got inf"),
        ({"num_hidden_layers": 32.5}, r"n_layers: got 32\.5; allowed: finite integers > 0"),
        (
            {"num_key_value_heads": 64},
            r"n_heads: 32\.0 is below n_kv_heads = 64\.0; allowed: n_kv_heads <= n_heads",
        ),
        (
            {"num_experts": 8, "num_experts_per_tok": 2, "num_hidden_layers": math.nan},
            r"num_hidden_layers: got nan",
        ),
    ],
)
def test_imported_config_values(tmp_path, changes, match):
    one_line_error(match, lambda: import_config(tmp_path, **changes))


def test_config_file_not_utf8_or_a_directory(tmp_path):
    bad = tmp_path / "config.json"
    bad.write_bytes(b'{"hidden_size": "\xff\xfe"}')
    one_line_error("not UTF-8 text", lambda: import_hf_config(bad))
    one_line_error("is a directory", lambda: import_hf_config(tmp_path))


def test_model_import_cli_exits_2(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SWEEP_HOME", str(tmp_path / "home"))
    path = tmp_path / "config.json"
    path.write_text(json.dumps({**CONFIG, "intermediate_size": -1}))
    assert main(["model", "import", str(path), "--name", "m"]) == 2
    assert "intermediate_size: got -1.0" in capsys.readouterr().err
    assert not (tmp_path / "home").exists()


def roofline(**extra):
    return {"profile": "roofline", "axes": {"gpu": ["X1"], "model": ["m1"], "context": [4096]}, **extra}


def test_inline_model_table_counts():
    model = {
        k: v
        for k, v in zip(
            ("n_layers", "hidden_size", "n_heads", "intermediate_size", "vocab_size"),
            (32, 4096, 32, 14336, 128256),
        )
    }
    spec = roofline(gpus={"X1": GPU}, models={"m1": {**model, "n_kv_heads": 8.5}})
    one_line_error(r"model 'm1': n_kv_heads: got 8\.5; allowed: finite integers > 0", lambda: sweep.run(spec))


@pytest.mark.parametrize(
    "changes, match",
    [
        ({"tdp_w": math.inf}, r"gpu '?X1'?: tdp_w: got inf; allowed: finite numbers"),
        ({"price_per_gpu_hour": -2.0}, r"price_per_gpu_hour: got -2\.0; allowed: finite numbers >= 0"),
        ({"prefill_chunk_tokens": 100.5}, r"prefill_chunk_tokens: got 100\.5; allowed: finite integers > 0"),
        (
            {"power_idle_w": 500, "power_nominal_w": 400, "power_k": 1, "power_x0": 4},
            r"power_nominal_w: 400\.0 is below power_idle_w = 500\.0",
        ),
        (
            {"power_idle_w": 300, "power_nominal_w": 800, "power_k": 1, "power_x0": 4},
            r"tdp_w: 700\.0 is below",
        ),
        (
            {"power_idle_w": 300, "power_nominal_w": 600, "power_k": 1, "power_x0": math.nan},
            r"power_x0: got nan",
        ),
    ],
)
def test_inline_gpu_values(changes, match):
    spec = roofline(gpus={"X1": {**GPU, **changes}})
    spec["axes"]["model"] = ["llama-3.1-8b"]
    one_line_error(match, lambda: sweep.run(spec))


@pytest.mark.parametrize(
    "context, match",
    [
        (
            {"start": 1024, "stop": 4096, "step": math.nan},
            r"axes\.context\.step: got nan; allowed: finite numbers > 0",
        ),
        (
            {"start": 1024, "stop": math.inf, "step": 1024},
            r"axes\.context\.stop: got inf; allowed: finite numbers",
        ),
        (
            {"start": 1, "stop": 1e10, "step": 1},
            r"axes\.context: the range has 1e\+10 values; allowed: at most 1e\+07",
        ),
        ({"start": 1, "stop": 10, "num": 10**10}, r"axes\.context\.num: the range has 1e\+10 values"),
        ({"start": 1024, "stop": 4096, "step": 1024, "num": 4}, r"axes\.context: range table has keys"),
        (
            {"start": 1024, "stop": 4096, "step": 1024, "spacing": "log"},
            r"axes\.context\.spacing: unknown spacing 'log'",
        ),
        (
            {"start": 1024, "stop": 4096, "step": 1024, "spacing": "geometric"},
            r"axes\.context: range table has keys",
        ),
        (
            {"start": 4096, "stop": 1024, "num": 4},
            r"axes\.context\.stop: 1024 is below axes\.context\.start = 4096",
        ),
    ],
)
def test_ranges(context, match):
    one_line_error(match, lambda: parse({"axes": {**BASE["axes"], "context": context}}, "g.toml"))


def test_huge_range_is_rejected_before_expansion_on_the_cli(tmp_path, capsys):
    grid = tmp_path / "g.toml"
    grid.write_text(
        '[axes]\ngpu = ["H100"]\nmodel = ["llama-3.1-70b"]\ncontext = {start = 1, stop = 1e10, step = 1}\n'
    )
    assert main(["run", str(grid), "-o", str(tmp_path / "o.nc")]) == 2
    assert "the range has 1e+10 values" in capsys.readouterr().err


@pytest.mark.parametrize("gpus", [["H100", "h100"], ["H100", "H100-SXM5"]])
def test_duplicate_gpus_after_case_and_alias(gpus):
    one_line_error(
        r"axes\.gpu: duplicate values: .*; allowed: distinct values",
        lambda: sweep.run({"axes": {**BASE["axes"], "gpu": gpus}}),
    )


def test_duplicate_models_after_case_alias_and_dense_name():
    for models in (["llama-3.1-8b", "Llama-3.1-8B"], ["dense-13b", "dense-13.0b"]):
        spec = {"profile": "roofline", "axes": {**BASE["axes"], "model": models}}
        one_line_error(r"axes\.model: duplicate values", lambda spec=spec: sweep.run(spec))


def test_fleet_arrival_rate_must_be_finite():
    one_line_error(
        r"arrival_rate: got inf; allowed: finite numbers > 0",
        lambda: sweep.run({**FLEET, "arrival_rate": math.inf}),
    )


def test_chunk_points_minimum():
    one_line_error(
        r"chunk_points: got 1; allowed: integers >= 1024", lambda: sweep.run({**BASE, "chunk_points": 1})
    )


def test_workload_length_too_large_for_a_float(tmp_path):
    path = tmp_path / "w.json"
    path.write_text(json.dumps([[100, 0.5], [10**400, 1.0]]))
    one_line_error(r"cdf\[1\]': got .*finite numbers", lambda: load_workload(path))


def test_workload_not_utf8(tmp_path):
    path = tmp_path / "w.json"
    path.write_bytes(b"[[1, \xff]]")
    one_line_error("not UTF-8 text", lambda: load_workload(path))
