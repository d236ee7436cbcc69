"""The measurement CSV format: the shipped ML.ENERGY file reads, and every bad input is one line."""

import hashlib
import math
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from sweep.calibration import measurements as M
from sweep.calibration.measurements import Measurements, read_measurements
from sweep.catalogs import model_catalog
from sweep.errors import MissingFieldError, SweepInputError, SweepWarning, UnknownNameError

DATA = Path(__file__).resolve().parents[2] / "sweep" / "data" / "measurements"
SHIPPED = DATA / "mlenergy-v3-chat.csv"
FAMILIES = DATA / "mlenergy-v3-families.csv"
FAMILY_MODELS = ("qwen3-8b", "qwen3-14b", "qwen3-30b-a3b", "gpt-oss-20b", "llama-4-scout", "gemma-3-12b")
needs_families = pytest.mark.skipif(
    not set(FAMILY_MODELS) <= set(model_catalog().names()),
    reason="the families file's models are not all in the catalog yet",
)
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
    with pytest.warns(SweepWarning, match="2 of 4 rows repeat an earlier row exactly"):
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


def sha256(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@needs_families
def test_shipped_families_file_reads():
    m = read_measurements(FAMILIES)
    assert len(m) == 148
    assert Counter(r["task"] for r in m.rows) == {"lm-arena-chat": 64, "gpqa": 60, "sourcegraph-fim": 24}
    assert {r["model"] for r in m.rows} == set(FAMILY_MODELS)
    assert {r["weight_dtype"] for r in m.rows if r["model"] == "gpt-oss-20b"} == {"mxfp4"}
    assert all(r["model_id"] for r in m.rows) and (m.column("data_parallel") == 1).all()
    scout = [r for r in m.rows if r["model"] == "llama-4-scout"]
    assert {r["model_id"] for r in scout} == {"meta-llama/Llama-4-Scout-17B-16E-Instruct"}
    ep4 = [r for r in scout if r["expert_parallel"] == 4]
    assert len(ep4) == 10 and {(r["tp"], r["num_gpus"], r["replicas"]) for r in ep4} == {(4.0, 4.0, 1.0)}
    assert all(r["raw"]["tp"] == "1" for r in ep4)  # the published TP, kept for writing back
    ep = m.column("expert_parallel") > 1
    assert (m.column("tp")[ep] == m.column("num_gpus")[ep]).all() and (m.column("replicas") == 1).all()
    assert np.isnan(m.column("prompt_tokens")).all()
    assert m.files == ({"path": str(FAMILIES), "sha256": sha256(FAMILIES), "rows": 148},)


@needs_families
def test_shipped_files_read_together():
    m = read_measurements([SHIPPED, FAMILIES])
    assert len(m) == 78 + 148
    assert [r["where"] for r in m.rows[:78]] == [f"{SHIPPED}:{i}" for i in range(2, 80)]
    assert [r["where"] for r in m.rows[78:]] == [f"{FAMILIES}:{i}" for i in range(2, 150)]
    assert {r["task"] for r in m.rows[:78]} == {"lm-arena-chat"} and {r["model_id"] for r in m.rows[:78]} == {
        ""
    }
    assert m.files == (
        {"path": str(SHIPPED), "sha256": sha256(SHIPPED), "rows": 78},
        {"path": str(FAMILIES), "sha256": sha256(FAMILIES), "rows": 148},
    )
    assert m.columns[:2] == ("source", "gpu") and {"task", "model_id", "expert_parallel"} <= set(m.columns)


def test_new_column_defaults(tmp_path):
    (row,) = read_one(tmp_path, HEADER, ROW).rows
    assert row["task"] == "lm-arena-chat" and row["model_id"] == ""
    assert row["expert_parallel"] == 1.0 and row["data_parallel"] == 1.0 and row["replicas"] == 1.0
    header = HEADER + ",task,model_id,expert_parallel,data_parallel,num_gpus"
    m = read_one(tmp_path, header, ROW + ",,x/y,,,", ROW + ",gpqa, Org/Model-1B ,1,1,", ROW + ",,,1,1,4")
    assert [r["task"] for r in m.rows] == ["lm-arena-chat", "gpqa", "lm-arena-chat"]
    assert [r["model_id"] for r in m.rows] == ["x/y", "Org/Model-1B", ""]
    assert list(m.column("replicas")) == [1, 1, 4] and list(m.column("tp")) == [1, 1, 1]
    assert (m.column("expert_parallel") == 1).all() and (m.column("data_parallel") == 1).all()


@pytest.mark.parametrize(
    ("tp", "num_gpus", "ep", "dp", "expected"),
    [
        ("1", "2", "2", "1", (2, 2)),  # vLLM expert parallelism as ML.ENERGY publishes it (TP 1)
        ("4", "4", "4", "", (4, 4)),  # the attention TP given
        ("4", "", "4", "1", (4, 4)),  # num_gpus blank: tp x data_parallel
        ("1", "4", "4", "2", (2, 4)),  # attention TP = num_gpus / data_parallel
        ("2", "4", "", "2", (2, 4)),
        ("2", "", "1", "2", (2, 4)),
        ("1", "8", "2", "8", (1, 8)),
    ],
)
def test_instance_layout(tmp_path, tp, num_gpus, ep, dp, expected):
    header = "gpu,model,tp,num_gpus,expert_parallel,data_parallel,concurrency,output_tokens,tokens_per_second,power_w"
    (row,) = read_one(tmp_path, header, f"H100,llama-3.1-8b,{tp},{num_gpus},{ep},{dp},32,400,3000,650").rows
    assert (row["tp"], row["num_gpus"]) == expected and row["replicas"] == 1.0
    assert row["raw"]["tp"] == tp


@pytest.mark.parametrize(
    ("column", "tp", "num_gpus", "ep", "dp", "task", "allowed"),
    [
        ("task", "1", "1", "1", "1", "chat", "lm-arena-chat, gpqa, sourcegraph-fim"),
        ("task", "1", "1", "1", "1", "GPQA", "lm-arena-chat, gpqa, sourcegraph-fim"),
        ("expert_parallel", "1", "4", "3", "1", "", "divisors of num_gpus = 4: 1, 2, 4"),
        ("expert_parallel", "1", "4", "8", "1", "", "divisors of num_gpus = 4: 1, 2, 4"),
        ("expert_parallel", "1", "", "4", "1", "", "divisors of num_gpus = 1 (blank: tp x data_parallel): 1"),
        ("data_parallel", "1", "4", "1", "3", "", "divisors of num_gpus = 4: 1, 2, 4"),
        ("data_parallel", "1", "4", "4", "8", "", "divisors of num_gpus = 4: 1, 2, 4"),
        ("tp", "2", "4", "4", "1", "", "1 or num_gpus / data_parallel = 4"),
        ("tp", "2", "8", "1", "2", "", "1 or num_gpus / data_parallel = 4"),
        ("tp", "3", "4", "2", "1", "", "1 or num_gpus / data_parallel = 4"),
        ("expert_parallel", "1", "2", "1.5", "1", "", "finite integers >= 1"),
        ("expert_parallel", "1", "2", "0", "1", "", "finite integers >= 1"),
        ("expert_parallel", "1", "2", "two", "1", "", "finite integers >= 1"),
        ("data_parallel", "1", "2", "2", "0", "", "finite integers >= 1"),
        ("data_parallel", "1", "2", "2", "-1", "", "finite integers >= 1"),
    ],
)
def test_bad_layout_or_task(tmp_path, column, tp, num_gpus, ep, dp, task, allowed):
    header = HEADER + ",num_gpus,expert_parallel,data_parallel,task"
    good = ROW + ",2,2,1,gpqa"
    bad = f"H100,llama-3.1-8b,{tp},32,400,3000,650,{num_gpus},{ep},{dp},{task}"
    msg = one_line_error(tmp_path, header, good, bad)
    value = {"tp": tp, "expert_parallel": ep, "data_parallel": dp, "task": task}[column]
    assert f"m.csv:3: column '{column}': got {value!r}; allowed: {allowed}" in msg


def test_files_concatenate_with_hashes(tmp_path):
    first = write(tmp_path, f"{HEADER}\n{ROW}\n", "a.csv")
    second = write(
        tmp_path,
        f"{HEADER},num_gpus,expert_parallel,task,model_id\n{ROW.replace(',1,', ',2,', 1)},2,2,gpqa,Org/M\n"
        f"{ROW},,,sourcegraph-fim,\n",
        "b.csv",
    )
    m = read_measurements([first, second])
    assert [f["path"] for f in m.files] == [first, second] and [f["rows"] for f in m.files] == [1, 2]
    assert [f["sha256"] for f in m.files] == [sha256(first), sha256(second)]
    assert [r["task"] for r in m.rows] == ["lm-arena-chat", "gpqa", "sourcegraph-fim"]
    assert [r["model_id"] for r in m.rows] == ["", "Org/M", ""]
    assert list(m.column("tp")) == [1, 2, 1] and list(m.column("expert_parallel")) == [1, 2, 1]
    assert m.columns == (*HEADER.split(","), "num_gpus", "expert_parallel", "task", "model_id")
