"""REPORT.md sections "Measured reality": the physical model against measured vLLM deployments.

The dense models of the chat file (issue #10: uncalibrated, calibrated in-sample, leave-one-model-out,
projections) and the modern architectures by family, task and GPU (issue #20). Every number comes
from the calibration models on the shipped measurements.
"""

from __future__ import annotations

import dataclasses
import math
import re
from importlib import resources
from pathlib import Path

from sweep.physics.mechanisms import ASSUMED_PROMPT_TOKENS
from sweep.reproduce.common import md_table, section
from sweep.reproduce.figures import plot_parity

MEASUREMENTS = "data/measurements/mlenergy-v3-chat.csv"  # inside the package (README next to it)
CALIBRATION = "mlenergy-v3"  # the shipped calibration, fitted on MEASUREMENTS
TARGET_IN_SAMPLE = 0.15  # issue #10 acceptance: median |ln(pred/meas)| of tokens/J, in-sample
TARGET_LOMO = 0.25  # ... and leave-one-model-out (pooled over the held-out models)
# Projections: (model, weight dtype, TPs) on each GPU, at each concurrency, prompt / output tokens
PROJECTIONS = (("llama-3.1-70b", "bf16", (2, 4, 8)), ("llama-3.1-405b", "fp8", (8,)))
PROJECTION_GPUS = ("H100", "B200")
PROJECTION_CONCURRENCY = (1, 64, 256)
PROJECTION_PROMPT_TOKENS = 500.0
PROJECTION_OUTPUT_TOKENS = 500.0
PROJECTION_UNCERTAINTY = "≥ ±30 %"  # docs/calibration.md §6: TP > 2 and larger models, "±30 % at best"


def pct(x: float) -> str:
    """100 · a median |ln(pred/meas)|, one decimal ("n/a" if NaN)."""
    return "n/a" if math.isnan(x) else f"{100 * x:.1f} %"


def _met(x: float, target: float) -> str:
    return "met" if x <= target else "NOT met"


def projection_rows() -> tuple:
    """Synthetic measurement-format rows (prediction inputs, nothing measured) for `PROJECTIONS`."""
    nan = math.nan
    rows = []
    for gpu in PROJECTION_GPUS:
        for model, weight_dtype, tps in PROJECTIONS:
            for tp in tps:
                for n in PROJECTION_CONCURRENCY:
                    rows.append(
                        {
                            "gpu": gpu,
                            "model": model,
                            "tp": float(tp),
                            "num_gpus": float(tp),
                            "concurrency": float(n),
                            "prompt_tokens": PROJECTION_PROMPT_TOKENS,
                            "output_tokens": PROJECTION_OUTPUT_TOKENS,
                            "mean_context_tokens": nan,
                            "itl_s": nan,
                            "tokens_per_second": nan,
                            "power_w": nan,
                            "max_num_seqs": nan,
                            "context": nan,
                            "weight_dtype": weight_dtype,
                            "kv_dtype": "bf16",
                            "source": "projection (sweep reproduce)",
                            "where": f"projection {gpu} {model} {weight_dtype} TP{tp} n={n}",
                            "raw": {},
                        }
                    )
    return tuple(rows)


def _chat_measurements() -> tuple:
    """The shipped chat runs (MEASUREMENTS), the shipped calibration and the prompt length it assumes."""
    from sweep.calibration.measurements import read_measurements
    from sweep.calibration.store import load_calibration
    from sweep.calibration.workflow import prompt_assumption

    with resources.as_file(resources.files("sweep").joinpath(MEASUREMENTS)) as path:
        m = read_measurements(path)
    cal = load_calibration(CALIBRATION)
    return m, cal, prompt_assumption(cal, None)


def _about(m, e_cal: dict, prompt: float, models: list, tps: list) -> list:
    """What the data is: runs per GPU, models, weights, TPs, source and the prompt assumption."""
    sources = sorted({r["source"] for r in m.rows if r["source"]})
    runs = ", ".join(f"{g} {e_cal[g]['rows']}" for g in e_cal)
    return [
        f"{len(m)} steady-state serving runs ({runs}) of {', '.join(models)}"
        f" ({', '.join(sorted({r['weight_dtype'] for r in m.rows}))} weights), TP {tps[0]}–{tps[-1]},",
        "from the public ML.ENERGY Benchmark v3 (GitHub `ml-energy/leaderboard`, Apache-2.0): vLLM 0.11.1,",
        "LMArena chat prompts (`lm-arena-chat`); file `sweep/" + MEASUREMENTS + "` (README next to it).",
        "Source column: " + "; ".join(f"“{s}”" for s in sources) + ".",
        "Prompt lengths are not published: blank prompts take the documented assumption of"
        f" {ASSUMED_PROMPT_TOKENS:g} tokens",
        f"(docs/calibration.md §4). Calibration: `{CALIBRATION}` (fitted on these runs, per GPU; prompt"
        f" {prompt:g} tokens).",
    ]


def _error_table(e_uncal: dict, e_p0: dict, e_cal: dict, pooled: dict) -> list:
    """The errors per GPU: uncalibrated (p = assumed and 0), calibrated in-sample, leave-one-model-out."""
    header = [
        "GPU",
        "runs",
        f"uncalibrated tok/J (%), p = {ASSUMED_PROMPT_TOKENS:g}",
        "uncalibrated tok/J (%), p = 0",
        f"uncalibrated tok/J bias, p = {ASSUMED_PROMPT_TOKENS:g} / 0",
        "calibrated tok/J (%)",
        "calibrated tok/s (%)",
        "calibrated power (%)",
        "calibrated ITL (%)",
        "leave-one-model-out tok/J (%), pooled",
    ]
    rows = [
        [
            g,
            e_cal[g]["rows"],
            pct(e_uncal[g]["tokens_per_joule"]),
            pct(e_p0[g]["tokens_per_joule"]),
            f"{e_uncal[g]['tokens_per_joule_bias']:.2f}× / {e_p0[g]['tokens_per_joule_bias']:.2f}×",
            pct(e_cal[g]["tokens_per_joule"]),
            pct(e_cal[g]["tokens_per_second"]),
            pct(e_cal[g]["power_w"]),
            pct(e_cal[g]["itl_s"]),
            pct(pooled[g]["tokens_per_joule"]),
        ]
        for g in e_cal
    ]
    return md_table(header, rows)


def _verdicts(e_cal: dict, pooled: dict) -> list:
    """Issue #10's targets, met or not per GPU: in-sample and leave-one-model-out tokens per joule."""
    gpus = list(e_cal)
    return [
        f"- in-sample tok/J ≤ {100 * TARGET_IN_SAMPLE:.0f} %: "
        + ", ".join(
            f"{g} {pct(e_cal[g]['tokens_per_joule'])} ({_met(e_cal[g]['tokens_per_joule'], TARGET_IN_SAMPLE)})"
            for g in gpus
        ),
        f"- leave-one-model-out tok/J ≤ {100 * TARGET_LOMO:.0f} %: "
        + ", ".join(
            f"{g} {pct(pooled[g]['tokens_per_joule'])} ({_met(pooled[g]['tokens_per_joule'], TARGET_LOMO)})"
            for g in gpus
        ),
    ]


def _lomo_table(lomo: dict, models: list, gpus: list) -> list:
    """Leave-one-model-out tokens per joule per held-out model and GPU, then pooled."""
    pooled = lomo["pooled"]
    rows = [
        [model, *(pct(lomo[model][g]["tokens_per_joule"]) if g in lomo[model] else "—" for g in gpus)]
        for model in models
    ] + [["**pooled**", *(pct(pooled[g]["tokens_per_joule"]) for g in gpus)]]
    return md_table(["held-out model", *gpus], rows)


def _projection_table(m, cal, prompt: float) -> list:
    """The calibrated model on `projection_rows()` (setups nobody measured here), "does not fit" beyond KV."""
    from sweep.calibration.validation import predictions

    proj_m = dataclasses.replace(m, rows=projection_rows())
    proj = predictions(proj_m, cal, prompt)
    rows = []
    for i, r in enumerate(proj_m.rows):
        cells = [r["gpu"], r["model"], f"{r['weight_dtype']} / {r['kv_dtype']}", int(r["tp"])]
        cells.append(int(r["concurrency"]))
        if bool(proj["fits"][i]):
            cells += [
                f"{float(proj['tokens_per_second'][i]):.0f}",
                f"{float(proj['power_w'][i]):.0f}",
                f"{float(proj['tokens_per_joule'][i]):.3f}",
                f"{1e3 * float(proj['itl_s'][i]):.1f}",
            ]
        else:
            cells += ["does not fit"] * 4
        rows.append(cells)
    header = ["GPU", "model", "weights / KV", "TP", "n", "tok/s", "power (W)", "tok/J", "ITL (ms)"]
    return md_table(header, rows)


def _projection_note(tps: list, models: list) -> list:
    """What the projections are and why no measured run validates them."""
    return [
        f"**Projections, not measurements (uncertainty {PROJECTION_UNCERTAINTY})**: the calibrated"
        f" `{CALIBRATION}` model at prompt {PROJECTION_PROMPT_TOKENS:g} / output"
        f" {PROJECTION_OUTPUT_TOKENS:g} tokens per request,",
        "one instance of TP GPUs (power: all of them). No run here validates them: the measured runs have"
        f" TP ≤ {tps[-1]}",
        f"and the models {', '.join(models)}, so TP > {tps[-1]}, larger models and fp8 weights are"
        " extrapolations",
        "(docs/calibration.md §6). “does not fit”: the n running sequences exceed the KV-cache capacity.",
    ]


def _parity_figure(m, uncal: dict, calibrated: dict, out: Path) -> Path:
    """`measured_parity.png` in `out`: uncalibrated and calibrated (in-sample) tokens/J against measured."""
    import numpy as np

    return plot_parity(
        m.column("tokens_per_second") / m.column("power_w"),
        np.array([r["gpu"] for r in m.rows]),
        [
            (
                f"uncalibrated physical model (prompt {ASSUMED_PROMPT_TOKENS:g} tokens)",
                uncal["tokens_per_joule"],
            ),
            (f"calibrated {CALIBRATION} (in-sample)", calibrated["tokens_per_joule"]),
        ],
        out / "measured_parity.png",
    )


def measured_reality(out) -> str:
    """The REPORT.md section "Measured reality" (Markdown) and the figure `measured_parity.png` in `out`.

    Reads the shipped measurements, predicts them with the uncalibrated physical model (assumed prompt
    500 and 0 tokens) and with the shipped calibration (in-sample), runs leave-one-model-out fits, and
    projects the calibrated model to setups nobody measured here. Every number comes from the models.
    """
    from sweep.calibration.validation import errors, leave_one_model_out, predictions

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    m, cal, prompt = _chat_measurements()
    uncal = predictions(m, None, ASSUMED_PROMPT_TOKENS)
    uncal_p0 = predictions(m, None, 0.0)
    calibrated = predictions(m, cal, prompt)
    e_uncal, e_p0, e_cal = errors(m, uncal), errors(m, uncal_p0), errors(m, calibrated)
    lomo = leave_one_model_out(m)
    models = list(dict.fromkeys(r["model"] for r in m.rows))
    tps = sorted({int(r["tp"]) for r in m.rows})
    projections = _projection_table(m, cal, prompt)
    figure = _parity_figure(m, uncal, calibrated, out)
    lines = section(
        "Measured reality — the physical model against measured vLLM deployments",
        _about(m, e_cal, prompt, models, tps),
        [
            "Cells marked (%): median |ln(pred/meas)| (%), i.e. 100 · median |ln(predicted / measured)| over",
            "a GPU's runs; bias: geometric mean of predicted / measured tokens per joule. Uncalibrated: the",
            "physical model with every mechanism neutral, p = assumed prompt tokens per request. Calibrated:",
            f"the shipped `{CALIBRATION}` calibration on the runs it was fitted on (in-sample).",
            "Leave-one-model-out: fit on the other models, predict the held-out one; pooled over all of them.",
        ],
        _error_table(e_uncal, e_p0, e_cal, lomo["pooled"]),
        ["Targets (issue #10, tokens per joule):", *_verdicts(e_cal, lomo["pooled"])],
        ["Leave-one-model-out, tokens per joule, median |ln(pred/meas)| (%) of the held-out model's runs:"],
        _lomo_table(lomo, models, list(e_cal)),
        [f"![parity: predicted vs measured tokens per joule]({figure.name})"],
        _projection_note(tps, models),
        projections,
    )
    return "\n".join(lines)


# --- Modern architectures: the shipped calibration per family, task and GPU (issue #20) --------------

FAMILY_MEASUREMENTS = (
    MEASUREMENTS,
    "data/measurements/mlenergy-v3-families.csv",
)  # what CALIBRATION is fitted on
TARGET_FAMILY = 0.30  # issue #20: median |ln| of tokens per joule per group, ITL likewise


def model_family(name: str, is_moe: bool) -> str:
    """A model's family label: its name without the size (llama-3.1-8b → llama-3.1), "-moe" for MoE."""
    base = re.sub(r"-(\d+(\.\d+)?b(-a\d+(\.\d+)?b)?|scout|maverick)$", "", name)
    return f"{base}-moe" if is_moe and not base.endswith("-moe") else base


def _family_measurements():
    """The shipped runs of FAMILY_MEASUREMENTS, each row labelled with its model's family."""
    from contextlib import ExitStack

    from sweep.calibration.measurements import read_measurements
    from sweep.catalogs import model_catalog

    with ExitStack() as stack:
        paths = [
            stack.enter_context(resources.as_file(resources.files("sweep").joinpath(p)))
            for p in FAMILY_MEASUREMENTS
        ]
        m = read_measurements(paths)
    models = model_catalog()
    rows = tuple({**r, "family": model_family(r["model"], models.get(r["model"]).is_moe)} for r in m.rows)
    return dataclasses.replace(m, rows=rows)


def _family_table(m, pred: dict, held: dict) -> list:
    """One row per (family, model, task, GPU): median |ln(pred/meas)| of tokens/J and ITL, in-sample and
    held out, and the share of runs predicted beyond the KV capacity."""
    import numpy as np

    measured = {
        "tokens_per_joule": m.column("tokens_per_second") / m.column("power_w"),
        "itl_s": m.column("itl_s"),
    }

    def median_abs_log(p, q, sel):
        x = np.abs(np.log(p[q][sel] / measured[q][sel]))
        x = x[np.isfinite(x)]
        return pct(float(np.median(x))) if x.size else "—"

    keys = list(dict.fromkeys((r["family"], r["model"], r["task"], r["gpu"]) for r in m.rows))
    table = []
    for family, model, task, gpu in keys:
        sel = np.array(
            [(r["family"], r["model"], r["task"], r["gpu"]) == (family, model, task, gpu) for r in m.rows]
        )
        table.append(
            [
                family,
                model,
                task,
                gpu,
                int(sel.sum()),
                median_abs_log(pred, "tokens_per_joule", sel),
                median_abs_log(pred, "itl_s", sel),
                median_abs_log(held, "tokens_per_joule", sel),
                median_abs_log(held, "itl_s", sel),
                f"{100 * float(np.mean(~pred['fits'][sel].astype(bool))):.0f} %",
            ]
        )
    header = [
        "family",
        "model",
        "task",
        "GPU",
        "runs",
        "tok/J (%)",
        "ITL (%)",
        "held-out tok/J (%)",
        "held-out ITL (%)",
        "not fit",
    ]
    return md_table(header, table)


def measured_families(out) -> str:
    """REPORT.md section: the shipped calibration per family, task and GPU, in-sample and with the whole
    family held out of the fit (issue #20; docs/calibration.md §3)."""
    from sweep.calibration.store import load_calibration
    from sweep.calibration.validation import held_out_predictions, predictions, row_prompt_tokens

    m = _family_measurements()
    cal = load_calibration(CALIBRATION)
    pred = predictions(m, cal, row_prompt_tokens(m, cal.prompt))
    held = held_out_predictions(m, "family")
    table = _family_table(m, pred, held)
    tasks = cal.prompt.get("tasks", {})
    prompts = ", ".join(f"{t} {v['value']:.0f} ± {v['standard_error']:.0f}" for t, v in tasks.items())
    lines = section(
        "Measured reality — modern architectures: mixture of experts, expert parallelism, MXFP4, local attention, long outputs",
        [
            f"{len(m)} runs of ML.ENERGY Benchmark v3 (the chat file and `sweep/{FAMILY_MEASUREMENTS[1]}`; README next to",
            "them): the smaller member of each family, on H100 and B200, tasks lm-arena-chat, gpqa (reasoning, outputs",
            f"of 2,000–9,000 tokens) and sourcegraph-fim (long prompts). Calibration `{CALIBRATION}` is fitted on all of",
            "them, per GPU; the prompt length of chat is the documented assumption"
            f" ({cal.prompt.get('value', 100.0):g} tokens), the other tasks' are fitted: {prompts}.",
            "Held out: the whole family left out of the fit, then predicted (its task's prompt length too when",
            "only that family has the task). Cells: median |ln(pred/meas)| (%) of the group's runs;",
            f'target ≤ {100 * TARGET_FAMILY:.0f} % (issue #20). "not fit": runs predicted beyond the KV capacity.',
        ],
        table,
    )
    return "\n".join(lines)
