"""GPU catalog: values and provenance, aliases, user additions, bad input."""

import math

import numpy as np
import pytest

from sweep.catalogs.gpus import (
    default_gpu_catalog,
    get_gpu,
    gpu_arrays,
    load_gpu_catalog,
)
from sweep.errors import (
    InvalidValueError,
    MissingFieldError,
    SweepInputError,
    UnknownNameError,
)

GIB = 2**30


def test_catalog_has_the_paper_skus_with_paper_values():
    cat = default_gpu_catalog()
    assert set(cat.names()) == {"A100", "H100", "H200", "B200", "GB200"}
    # docs/models.md §2 hardware table (memory in GiB)
    want = {
        "A100": (2.039e12, 80, 312e12, None, 400, 2.21),
        "H100": (3.35e12, 80, 989e12, 1978e12, 700, 4.02),
        "H200": (4.8e12, 141, 989e12, 1978e12, 700, 6.00),
        "B200": (8.0e12, 180, 2250e12, 4500e12, 1000, 8.00),
        "GB200": (8.0e12, 200, 2500e12, 5000e12, 1200, 10.00),
    }
    for name, (bw, gib, f16, f8, tdp, price) in want.items():
        g = cat.get(name)
        assert g.value("hbm_bandwidth_bytes_per_s") == bw
        assert g.value("memory_bytes") == gib * GIB
        assert g.value("fp16_flops") == f16
        assert g.value("tdp_w") == tdp
        assert g.value("price_per_gpu_hour") == price
        if f8 is None:
            assert not g.supports_fp8 and math.isnan(g.value("fp8_flops"))
        else:
            assert g.supports_fp8 and g.value("fp8_flops") == f8
    assert cat.get("H100").value("prefill_chunk_tokens") == 1024
    assert cat.get("B200").value("prefill_chunk_tokens") == 2048


def test_provenance_quality_and_uncertainty():
    h100, b200 = get_gpu("H100"), get_gpu("B200")
    assert h100.specs["hbm_bandwidth_bytes_per_s"].quality == "measured"
    assert h100.specs["hbm_bandwidth_bytes_per_s"].uncertainty == 0.0
    assert "datasheet" in h100.specs["hbm_bandwidth_bytes_per_s"].source
    assert h100.specs["power_x0"].quality == "calibrated"
    for name in ("A100", "H200", "B200", "GB200"):
        g = get_gpu(name)
        for key in ("memory_bytes", "hbm_bandwidth_bytes_per_s", "fp16_flops", "tdp_w"):
            assert g.specs[key].quality == "projected" and g.specs[key].uncertainty == 0.20
            assert g.specs[key].source
    assert "141 GB" in get_gpu("H200").specs["memory_bytes"].source  # vendor/paper discrepancy recorded
    # logistic power only where measured
    assert h100.has_logistic_power and (h100.value("power_idle_w"), h100.value("power_nominal_w")) == (
        300,
        600,
    )
    assert (h100.value("power_k"), h100.value("power_x0")) == (1.0, 4.2)
    assert not b200.has_logistic_power


@pytest.mark.parametrize(
    "alias, canon",
    [
        ("H100-SXM5", "H100"),
        ("h100", "H100"),
        ("A100-SXM-80GB", "A100"),
        ("b200-sxm", "B200"),
        ("H200-SXM", "H200"),
        ("gb200", "GB200"),
    ],
)
def test_aliases_case_insensitive(alias, canon):
    assert get_gpu(alias).name == canon


def test_unknown_gpu_suggests_close_names():
    with pytest.raises(UnknownNameError) as e:
        get_gpu("H10")
    assert isinstance(e.value, SweepInputError) and isinstance(e.value, ValueError)
    msg = str(e.value)
    assert "did you mean" in msg and "'H100'" in msg and "\n" not in msg
    with pytest.raises(UnknownNameError, match="known: "):
        get_gpu("TPU-v5")


def test_user_gpu_from_file_and_inline(tmp_path):
    f = tmp_path / "my_gpus.toml"
    f.write_text(
        """
[MI300X]
aliases = ["AMD-MI300X"]
source = "AMD datasheet"
quality = "projected"
uncertainty = 0.15
memory_bytes = 206158430208
hbm_bandwidth_bytes_per_s = 5.3e12
fp16_flops = 1307e12
fp8_flops = { value = 2615e12, source = "AMD datasheet dense fp8", uncertainty = 0.1 }
tdp_w = 750
price_per_gpu_hour = 4.5
prefill_chunk_tokens = 1024
"""
    )
    inline = {
        "H100": {
            "memory_bytes": 80 * GIB,
            "hbm_bandwidth_bytes_per_s": 3.0e12,
            "fp16_flops": 900e12,
            "tdp_w": 600,
            "price_per_gpu_hour": 3.0,
            "prefill_chunk_tokens": 512,
            "quality": "projected",
        }
    }
    cat = load_gpu_catalog(extra_files=[f], inline=inline)
    mi = cat.get("amd-mi300x")
    assert mi.name == "MI300X" and mi.value("fp8_flops") == 2615e12
    assert mi.specs["fp8_flops"].uncertainty == 0.1 and mi.specs["tdp_w"].uncertainty == 0.15
    assert mi.specs["fp8_flops"].source == "AMD datasheet dense fp8"
    assert cat.get("H100").value("hbm_bandwidth_bytes_per_s") == 3.0e12  # inline replaces the built-in
    assert not cat.get("H100").supports_fp8
    assert cat.get("H100-SXM5").name == "H100"  # a replacement without aliases keeps the old ones
    assert default_gpu_catalog().get("H100").value("hbm_bandwidth_bytes_per_s") == 3.35e12


def test_bad_user_gpu_entries(tmp_path):
    base = {
        "memory_bytes": 80 * GIB,
        "hbm_bandwidth_bytes_per_s": 3e12,
        "fp16_flops": 1e15,
        "tdp_w": 700,
        "price_per_gpu_hour": 1.0,
        "prefill_chunk_tokens": 1024,
    }
    missing = {k: v for k, v in base.items() if k != "hbm_bandwidth_bytes_per_s"}
    with pytest.raises(MissingFieldError, match="hbm_bandwidth_bytes_per_s"):
        load_gpu_catalog(inline={"X": missing})
    with pytest.raises(InvalidValueError, match="quality"):
        load_gpu_catalog(inline={"X": {**base, "quality": "guessed"}})
    with pytest.raises(InvalidValueError, match="unknown field"):
        load_gpu_catalog(inline={"X": {**base, "hbm_bw": 3e12}})
    with pytest.raises(MissingFieldError, match="logistic"):
        load_gpu_catalog(inline={"X": {**base, "power_idle_w": 100}})
    with pytest.raises(InvalidValueError, match="> 0"):
        load_gpu_catalog(inline={"X": {**base, "tdp_w": 0}})
    bad = tmp_path / "bad.toml"
    bad.write_text("[X\nmemory_bytes = 1")
    with pytest.raises(SweepInputError, match="invalid TOML"):
        load_gpu_catalog(extra_files=[bad])


def test_gpu_arrays_stack_with_nan_for_absent():
    cat = default_gpu_catalog()
    arr = gpu_arrays([cat.get(n) for n in ("A100", "H100", "B200")])
    assert arr["hbm_bandwidth_bytes_per_s"].shape == (3,)
    f8 = np.asarray(arr["fp8_flops"])
    assert np.isnan(f8[0]) and f8[1] == 1978e12
    assert np.isnan(np.asarray(arr["power_x0"])[2])
