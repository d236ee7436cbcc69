"""The measurement CSV format: the shipped ML.ENERGY file reads, and every bad input is one line."""

import hashlib
import math
import warnings
from pathlib import Path

import numpy as np
import pytest

from sweep.calibration import measurements as M
from sweep.calibration.measurements import Measurements, read_measurements
from sweep.catalogs import model_catalog
from sweep.errors import MissingFieldError, SweepInputError, SweepWarning, UnknownNameError

SHIPPED = Path(__file__).resolve().parents[2] / "sweep" / "data" / "measurements" / "mlenergy-v3-chat.csv"
HEADER = "gpu,model,tp,concurrency,output_tokens,tokens_per_second,power_w"
ROW = "H100,llama-3.1-8b,1,32,400,3000,650"


def write(tmp_path, text, name="m.csv") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def read_one(tmp_path, header=HEADER, *rows, **kw) -> Measurements:
    return read_measurements(write(tmp_path, "\n".join([header, *rows]) + "\n"), **kw)


def one_line_error(tmp_path, header, *rows, error=SweepInputError) -> str:
    path = write(tmp_path, "\n".join([header, *rows]) + "\n")
    with pytest.raises(error) as info:
        read_measurements(path)
    message = str(info.value)
    assert "\n" not in message and path in message
    return message


@pytest.mark.skipif("qwen3-14b" not in model_catalog().names(), reason="qwen3-14b not in the catalog yet")
def test_shipped_file_reads():
    m = read_measurements(SHIPPED)
    assert len(m) == 78
    assert {r["gpu"] for r in m.rows} == {"H100", "B200"}
    assert {r["model"] for r in m.rows} == {"llama-3.1-8b", "qwen3-8b", "qwen3-14b", "qwen3-32b"}
    assert np.isnan(m.column("prompt_tokens")).all()
    assert np.isfinite(m.column("output_tokens")).all()
    assert np.isnan(m.column("mean_context_tokens")).all()
    assert (m.column("tokens_per_second") > 0).all() and (m.column("power_w") > 0).all()
    assert set(m.column("tp")) == {1.0, 2.0} and (m.column("num_gpus") == m.column("tp")).all()
    assert m.files == (
        {"path": str(SHIPPED), "sha256": hashlib.sha256(SHIPPED.read_bytes()).hexdigest(), "rows": 78},
    )
    assert m.columns[0] == "source" and "itl_s" in m.columns
    assert {(r["weight_dtype"], r["kv_dtype"]) for r in m.rows} == {("bf16", "bf16")}
    assert m.rows[0]["where"] == f"{SHIPPED}:2" and m.rows[-1]["where"] == f"{SHIPPED}:79"


def test_row_dict(tmp_path):
    header = HEADER + ",num_gpus,weight_dtype,kv_dtype,itl_s,source,prompt_tokens,context"
    m = read_one(tmp_path, header, " h100-sxm5 , Llama-3.1-8B ,2,32,400,3000,650, 4,FP8,,0.02,lab,,8192")
    (row,) = m.rows
    assert row["gpu"] == "H100" and row["model"] == "llama-3.1-8b"
    assert row["tp"] == 2.0 and row["num_gpus"] == 4.0 and row["context"] == 8192.0
    assert row["weight_dtype"] == "fp8" and row["kv_dtype"] == "bf16"
    assert math.isnan(row["prompt_tokens"]) and math.isnan(row["max_num_seqs"]) and row["itl_s"] == 0.02
    assert row["source"] == "lab" and row["where"].endswith("m.csv:2")
    assert row["raw"]["gpu"] == " h100-sxm5 " and list(row["raw"]) == header.split(",")
    assert m.columns == tuple(header.split(","))
    assert read_one(tmp_path, HEADER, ROW).rows[0]["source"] == ""
    with pytest.raises(SweepInputError):
        m.column("gpu")


def test_mean_context_tokens_alone(tmp_path):
    m = read_one(tmp_path, "gpu,model,tp,concurrency,mean_context_tokens,tokens_per_second,power_w", ROW)
    assert m.rows[0]["mean_context_tokens"] == 400 and math.isnan(m.rows[0]["output_tokens"])


def test_missing_required_column(tmp_path):
    msg = one_line_error(
        tmp_path, HEADER.replace(",power_w", ""), ROW[: ROW.rindex(",")], error=MissingFieldError
    )
    assert "power_w" in msg and "the header has: gpu, model" in msg
    msg = one_line_error(tmp_path, HEADER.replace("output_tokens", "x"), ROW)
    assert "mean_context_tokens or output_tokens" in msg


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("concurrency", "many"),
        ("concurrency", ""),
        ("power_w", "0"),
        ("power_w", "-5"),
        ("tokens_per_second", "nan"),
        ("tokens_per_second", "inf"),
        ("tp", "1.5"),
        ("tp", "0"),
        ("num_gpus", "3"),
        ("weight_dtype", "fp4"),
        ("kv_dtype", "int4"),
        ("max_num_seqs", "2.5"),
        ("prompt_tokens", "-1"),
        ("itl_s", "0"),
    ],
)
def test_bad_cell(tmp_path, column, value):
    header = HEADER + ",num_gpus,weight_dtype,kv_dtype,max_num_seqs,prompt_tokens,itl_s"
    good = ROW + ",2,bf16,bf16,64,,0.01"
    cells = dict(zip(header.split(","), good.split(",")))
    cells["tp"] = "2" if column == "num_gpus" else cells["tp"]
    cells[column] = value
    msg = one_line_error(tmp_path, header, good, ",".join(cells.values()))
    assert f":3: column '{column}': got {value!r}; allowed: " in msg


@pytest.mark.parametrize(("column", "name"), [("gpu", "H10"), ("model", "llama-9"), ("gpu", "")])
def test_unknown_name(tmp_path, column, name):
    cells = dict(zip(HEADER.split(","), ROW.split(",")))
    cells[column] = name
    msg = one_line_error(tmp_path, HEADER, ",".join(cells.values()), error=UnknownNameError)
    assert f":2: column '{column}': got {name!r}" in msg and "allowed: " in msg


def test_names_resolved_once(tmp_path, monkeypatch):
    msg = one_line_error(tmp_path, HEADER, ROW, ROW.replace("H100", "H10"))
    assert ":3: column 'gpu'" in msg and "did you mean 'H100'" in msg
    looked_up = []
    catalog = M.gpu_catalog()
    get = catalog.get
    monkeypatch.setattr(catalog, "get", lambda name: looked_up.append(name) or get(name), raising=False)
    monkeypatch.setattr(M, "gpu_catalog", lambda: catalog)
    assert len(read_one(tmp_path, HEADER, ROW, ROW, ROW.replace("H100", "B200"), ROW)) == 4
    assert looked_up == ["H100", "B200"]


def test_no_sequence_length(tmp_path):
    header = HEADER + ",mean_context_tokens"
    msg = one_line_error(tmp_path, header, ROW + ",", "H100,llama-3.1-8b,1,32,,3000,650,")
    assert ":3: columns 'mean_context_tokens' and 'output_tokens'" in msg


def test_wrong_cell_count(tmp_path):
    assert ":2: got 8 cells" in one_line_error(tmp_path, HEADER, ROW + ",1")


@pytest.mark.parametrize(
    ("data", "expected"),
    [(b"", "empty"), (HEADER.encode() + b"\n", "no data rows"), (b"gpu,model\n\xff\xfe,x\n", "not UTF-8")],
)
def test_bad_file(tmp_path, data, expected):
    path = tmp_path / "m.csv"
    path.write_bytes(data)
    with pytest.raises(SweepInputError) as info:
        read_measurements(path)
    assert "\n" not in str(info.value) and str(path) in str(info.value) and expected in str(info.value)


@pytest.mark.parametrize(("path", "expected"), [(".", "directory"), ("absent.csv", "does not exist")])
def test_not_a_file(tmp_path, path, expected):
    path = tmp_path / path
    with pytest.raises(SweepInputError) as info:
        read_measurements(path)
    assert "\n" not in str(info.value) and str(path) in str(info.value) and expected in str(info.value)


def test_unknown_column_warns_once(tmp_path):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        m = read_one(tmp_path, HEADER + ",batch_note,colour", ROW + ",x,red", ROW + ",y,blue")
    notices = [w for w in caught if issubclass(w.category, SweepWarning)]
    assert len(notices) == 1
    assert str(notices[0].message).endswith("m.csv: ignoring unknown columns: batch_note, colour")
    assert len(m) == 2 and m.rows[1]["raw"]["colour"] == "blue" and "colour" in m.columns


def test_prediction_inputs(tmp_path):
    m = read_one(tmp_path, "gpu,model,tp,concurrency,output_tokens", "B200,qwen3-8b,1,64,500", measured=False)
    assert math.isnan(m.rows[0]["tokens_per_second"]) and math.isnan(m.rows[0]["power_w"])
    m = read_one(tmp_path, HEADER, "H100,llama-3.1-8b,1,32,400,,", measured=False)
    assert np.isnan(m.column("power_w")).all()
    with pytest.raises(SweepInputError, match="column 'tokens_per_second'"):
        read_one(tmp_path, HEADER, "H100,llama-3.1-8b,1,32,400,,")


def test_files_concatenate(tmp_path):
    first = write(tmp_path, f"{HEADER}\n{ROW}\n{ROW.replace(',32,', ',64,')}\n", "a.csv")
    second = write(
        tmp_path,
        "model,gpu,tp,concurrency,mean_context_tokens,tokens_per_second,power_w,itl_s\n"
        "qwen3-8b,B200,1,8,900,800,500,0.01\n",
        "b.csv",
    )
    m = read_measurements([first, Path(second)])
    assert list(m.column("concurrency")) == [32, 64, 8]
    assert [r["where"] for r in m.rows] == [f"{first}:2", f"{first}:3", f"{second}:2"]
    assert [f["path"] for f in m.files] == [first, second] and [f["rows"] for f in m.files] == [2, 1]
    for f in m.files:
        assert f["sha256"] == hashlib.sha256(Path(f["path"]).read_bytes()).hexdigest()
    assert m.columns == (*HEADER.split(","), "mean_context_tokens", "itl_s")
    assert np.isnan(m.column("itl_s")[:2]).all() and m.column("itl_s")[2] == 0.01


def test_quoted_and_blank_lines(tmp_path):
    text = f'{HEADER},source\r\n\r\n{ROW},"a, b\nc"\r\n{ROW},x\r\n'
    m = read_measurements(write(tmp_path, text))
    assert [r["where"].rsplit(":", 1)[1] for r in m.rows] == ["3", "5"] and m.rows[0]["source"] == "a, b\nc"
