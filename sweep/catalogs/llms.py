"""LLM architecture catalog: `sweep/data/models.toml`, user TOML files, inline tables and
Hugging Face config.json import (local files only). The field schema and the counting rules are in
`sweep.physics.architecture`.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from dataclasses import dataclass, field
from pathlib import Path

import jax.numpy as jnp

from sweep import validate as V
from sweep.catalogs.provenance import PROVENANCE_KEYS, Catalog, Value, parse_entry, read_toml
from sweep.errors import InvalidValueError, MissingFieldError, SweepInputError
from sweep.io.files import read_text
from sweep.physics.architecture import (
    ARCH_DEFAULTS,
    ARCH_FIELDS,
    FLAG_FIELDS,
    MODEL_FIELDS,
    PAPER_FIELDS,
    POSITIVE_FIELDS,
    REQUIRED_ARCH,
)

CATALOG_PATH = Path(__file__).parent.parent / "data" / "models.toml"
KERNEL_KEYS = (
    "n_experts",
    "experts_per_token",
    "hidden_size",
    "moe_intermediate_size",
    "dtype_bytes",
    "tokens_per_layer",
    "latency_s_per_layer",
    "reference_bandwidth_bytes_per_s",
    "bandwidth_exponent",
)


@dataclass(frozen=True)
class ModelEntry:
    """One model: architecture values (Value with provenance) and metadata."""

    name: str
    arch: dict
    aliases: tuple = ()
    origin: str = ""
    paper_kernel: dict = field(default_factory=dict)  # filled by the catalog (paper convention)

    def value(self, key: str) -> float:
        return self.arch[key].value

    @property
    def is_moe(self) -> bool:
        return self.value("n_experts") > 0

    @property
    def is_mla(self) -> bool:
        return self.value("mla") > 0

    def field_values(self) -> dict:
        """Every MODEL_FIELDS value as a number (0 for an absent field; the paper MoE kernel's latency,
        reference bandwidth and exponent default to 0, 1, 0): `arrays` without JAX."""
        out = {k: self.arch[k].value if k in self.arch else 0.0 for k in ARCH_FIELDS + PAPER_FIELDS}
        k = self.paper_kernel
        out["paper_moe_kernel_s_per_layer"] = k.get("latency_s_per_layer", 0.0)
        out["paper_moe_kernel_reference_bw"] = k.get("reference_bandwidth_bytes_per_s", 1.0)
        out["paper_moe_kernel_bw_exponent"] = k.get("bandwidth_exponent", 0.0)
        return out

    def arrays(self) -> dict:
        """Dict of float64 scalars over MODEL_FIELDS, as `derive_profile` and the counters take."""
        return {k: jnp.asarray(v, dtype=jnp.float64) for k, v in self.field_values().items()}


def _complete(name: str, arch: dict, where: str) -> dict:
    """Check required fields, fill defaults and derived values, sanity-check the architecture."""
    V.keys(f"{where}'{name}'", arch, ARCH_FIELDS + PAPER_FIELDS, REQUIRED_ARCH)
    for k, x in arch.items():  # given values; derived ones follow from them
        rule = "flag" if k in FLAG_FIELDS else "positive" if k in POSITIVE_FIELDS else "nonnegative"
        V.number(f"{where}'{name}'", k, x.value, rule, integer=k not in ("head_dim", *PAPER_FIELDS))
    arch = dict(arch)
    src = arch["n_layers"]
    derived = lambda v: Value(float(v), src.source + " (derived)", src.quality, 0.0)  # noqa: E731
    for k, d in ARCH_DEFAULTS.items():
        if k not in arch and d is not None:
            arch[k] = Value(d, "default", src.quality, 0.0)
    if "n_kv_heads" not in arch:
        arch["n_kv_heads"] = derived(arch["n_heads"].value)
    if "head_dim" not in arch:
        arch["head_dim"] = derived(arch["hidden_size"].value / arch["n_heads"].value)
    if "shared_intermediate_size" not in arch:
        arch["shared_intermediate_size"] = derived(
            arch["n_shared_experts"].value * arch["moe_intermediate_size"].value
        )
    v = {k: x.value for k, x in arch.items()}
    V.ordered(f"{where}'{name}'", {"n_kv_heads": v["n_kv_heads"], "n_heads": v["n_heads"]})
    V.ordered(f"{where}'{name}'", {"n_dense_layers": v["n_dense_layers"], "n_layers": v["n_layers"]})
    V.ordered(f"{where}'{name}'", {"n_window_layers": v["n_window_layers"], "n_layers": v["n_layers"]})
    if v["n_window_layers"] > 0 and not v["attention_window_tokens"] > 0:
        raise MissingFieldError(f"{where}'{name}': n_window_layers > 0 needs attention_window_tokens > 0")
    if v["n_experts"] > 0 and not (
        0 < v["experts_per_token"] <= v["n_experts"] and v["moe_intermediate_size"] > 0
    ):
        raise InvalidValueError(
            f"{where}'{name}': MoE needs 0 < experts_per_token <= n_experts and moe_intermediate_size > 0"
        )
    if v["mla"] > 0 and not (v["kv_lora_rank"] > 0 and v["qk_rope_head_dim"] > 0 and v["v_head_dim"] > 0):
        raise MissingFieldError(
            f"{where}'{name}': MLA needs kv_lora_rank, qk_rope_head_dim, qk_nope_head_dim, v_head_dim"
        )
    return arch


def model_entry_from_table(name: str, table: dict, origin: str = "") -> ModelEntry:
    """Validate and build one entry from a TOML/inline table (format of `sweep/data/models.toml`)."""
    if not isinstance(table, dict):
        raise InvalidValueError(
            f"model '{name}': expected a table of architecture fields, got {type(table).__name__}"
        )
    where = f"{origin}: model " if origin else "model "
    arch, meta = parse_entry(name, table, numeric_keys=ARCH_FIELDS + PAPER_FIELDS, where=where)
    V.keys(
        f"{where}'{name}'",
        [*arch, *meta],
        [*ARCH_FIELDS, *PAPER_FIELDS, "aliases", "description", "hf_repo", *PROVENANCE_KEYS],
    )
    return ModelEntry(
        name=name, arch=_complete(name, arch, where), aliases=tuple(meta.get("aliases", ())), origin=origin
    )


# ---------------------------------------------------------------------------------------------
# Hugging Face config.json import (local file only)

# our field <- candidate config.json keys (first present wins)
HF_KEYS = {
    "n_layers": ("num_hidden_layers", "n_layer", "num_layers"),
    "hidden_size": ("hidden_size", "n_embd", "d_model"),
    "n_heads": ("num_attention_heads", "n_head"),
    "n_kv_heads": ("num_key_value_heads",),
    "head_dim": ("head_dim",),
    "intermediate_size": ("intermediate_size", "ffn_dim", "n_inner"),
    "vocab_size": ("vocab_size",),
    "tie_word_embeddings": ("tie_word_embeddings",),
    "n_experts": ("num_experts", "num_local_experts", "n_routed_experts"),
    "experts_per_token": ("num_experts_per_tok", "moe_topk"),
    "n_shared_experts": ("n_shared_experts",),
    "moe_intermediate_size": ("moe_intermediate_size",),
    "shared_intermediate_size": ("shared_expert_intermediate_size",),
    "n_dense_layers": ("first_k_dense_replace",),
    "q_lora_rank": ("q_lora_rank",),
    "kv_lora_rank": ("kv_lora_rank",),
    "qk_rope_head_dim": ("qk_rope_head_dim",),
    "qk_nope_head_dim": ("qk_nope_head_dim",),
    "v_head_dim": ("v_head_dim",),
    "attention_bias": ("attention_bias",),
    "max_context_tokens": ("max_position_embeddings",),
}
HF_REQUIRED = {k: HF_KEYS[k][0] for k in REQUIRED_ARCH}


def _hf_int(src: str, key: str, v, rule: str = "nonnegative") -> int:
    return int(V.number(src, key, float(v) if isinstance(v, bool) else v, rule, integer=True))


def _hf_local_attention(cfg: dict, mt: str, L: int, src: str) -> tuple[int, int, int]:
    """(n_window_layers, attention_window_tokens, chunked_attention) of a config.json (see
    `import_hf_config`)."""
    types = cfg.get("layer_types")
    if isinstance(types, list) and types:
        types = [str(t) for t in types[:L]]
        n_slide, n_chunk = types.count("sliding_attention"), types.count("chunked_attention")
        if n_slide and n_chunk:
            raise InvalidValueError(
                f"{src}: layer_types: both sliding_attention and chunked_attention layers; "
                "allowed: one kind of local attention"
            )
        n_local, chunked = (n_chunk, 1) if n_chunk else (n_slide, 0)
    elif mt in ("gemma3", "gemma3_text"):  # layer i is global iff (i + 1) % pattern == 0
        p = _hf_int(src, "sliding_window_pattern", cfg.get("sliding_window_pattern") or 6, "positive")
        n_local, chunked = L - L // p, 0
        cfg = {"sliding_window": 4096, **{k: v for k, v in cfg.items() if v is not None}}
    elif mt in ("llama4", "llama4_text") and cfg.get("attention_chunk_size"):
        rope = cfg.get("no_rope_layers")  # 1: RoPE layer with chunked attention, 0: global NoPE layer
        if isinstance(rope, list) and rope:
            n_local = sum(1 for r in rope[:L] if _hf_int(src, "no_rope_layers", r) > 0)
        else:  # transformers' default: every 4th layer is global
            n_local = L - L // 4
        chunked = 1
    else:
        return 0, 0, 0
    if n_local == 0:
        return 0, 0, 0
    key = "attention_chunk_size" if chunked else "sliding_window"
    if cfg.get(key) is None:
        raise MissingFieldError(f"{src}: {n_local} local-attention layer(s) but no {key}")
    return n_local, _hf_int(src, key, cfg[key], "positive"), chunked


def _hf_experts(cfg: dict, arch: dict, llama4: bool, L: int, src: str, mk) -> None:
    """The MoE fields of an HF config into `arch` (in place): expert widths, shared experts, dense layers,
    mxfp4 experts (the family rules in `import_hf_config`'s docstring); `mk` makes a derived Value."""
    if llama4:  # intermediate_size: routed and shared expert width; intermediate_size_mlp: dense FFN
        width = arch["intermediate_size"].value
        arch.setdefault("moe_intermediate_size", mk(width))
        arch.setdefault("n_shared_experts", mk(1))
        arch.setdefault("shared_intermediate_size", mk(width))
        dense = cfg.get("intermediate_size_mlp")
        arch["intermediate_size"] = (
            Value(float(_hf_int(src, "intermediate_size_mlp", dense, "positive")), src, "measured", 0.0)
            if dense is not None
            else mk(16384)
        )
        moe_layers = cfg.get("moe_layers")
        if isinstance(moe_layers, list):
            n_moe = len({_hf_int(src, "moe_layers", i) for i in moe_layers} & set(range(L)))
        else:
            step = cfg.get("interleave_moe_layer_step") or 1
            n_moe = L // _hf_int(src, "interleave_moe_layer_step", step, "positive")
        arch.setdefault("n_dense_layers", mk(L - n_moe))
    if "moe_intermediate_size" not in arch:  # Mixtral, gpt-oss: each expert is a full FFN
        arch["moe_intermediate_size"] = mk(arch["intermediate_size"].value)
    if "shared_intermediate_size" in arch and "n_shared_experts" not in arch:  # Qwen2-MoE; 0: none
        arch["n_shared_experts"] = mk(1 if arch["shared_intermediate_size"].value > 0 else 0)
    mlp_only = cfg.get("mlp_only_layers") or []
    mlp_only = {
        _hf_int(src, "mlp_only_layers", i) for i in (mlp_only if isinstance(mlp_only, list) else [mlp_only])
    }
    step = _hf_int(src, "decoder_sparse_step", cfg.get("decoder_sparse_step", 1) or 1, "positive")
    if "n_dense_layers" not in arch and (mlp_only or step != 1):
        n_moe = L // step - sum(1 for i in mlp_only if i < L and (i + 1) % step == 0)
        arch["n_dense_layers"] = mk(L - n_moe)
    quant = cfg.get("quantization_config")
    if isinstance(quant, dict) and str(quant.get("quant_method", "")).lower() == "mxfp4":
        arch["mxfp4_experts"] = mk(1)


def import_hf_config(path, name: str | None = None) -> ModelEntry:
    """Build a ModelEntry from a local Hugging Face `config.json` (no network).

    Multimodal configs with a `text_config` use it (the text model only; the vision tower is not
    counted). Defaults where config.json is silent: n_kv_heads = heads, head_dim = hidden/heads,
    tie_word_embeddings = false (HF's base-class default is true, but every catalog family sets it
    explicitly; Gemma-3 ties by default: true). Family rules:
    - MoE: Mixtral-style (no moe_intermediate_size, e.g. Mixtral, gpt-oss) uses intermediate_size per
      expert; Qwen2/3-MoE `mlp_only_layers` and `decoder_sparse_step` become n_dense_layers;
      `shared_expert_intermediate_size` > 0 is one shared expert of that width (0: none).
    - Llama-4: `intermediate_size` is the routed and the one shared expert's width,
      `intermediate_size_mlp` (transformers' default 16384) the dense layers' FFN width; layer i is
      MoE iff (i + 1) % interleave_moe_layer_step == 0 (or `moe_layers` lists them).
    - Local attention: `layer_types` ("sliding_attention" with `sliding_window`, "chunked_attention"
      with `attention_chunk_size`); else Gemma-3 `sliding_window_pattern` p (layer i global iff
      (i + 1) % p == 0; transformers' defaults p = 6, window 4096); else Llama-4
      `attention_chunk_size` on the RoPE layers of `no_rope_layers` (1 = RoPE + chunked, 0 = global;
      absent: 3 of every 4 layers), chunked_attention = 1. Gives n_window_layers and
      attention_window_tokens (0 and 0 without local layers).
    - q/k RMSNorm: Qwen3, Gemma-3 (Llama-4's q/k L2 norm has no weights: qk_norm 0); qkv bias:
      Qwen2, gpt-oss (unless attention_bias says otherwise).
    - `quantization_config.quant_method == "mxfp4"` on an MoE model: mxfp4_experts = 1 (gpt-oss).
    """
    path = Path(path)
    try:
        cfg = json.loads(read_text(path, "config file"))
    except json.JSONDecodeError as e:
        raise SweepInputError(f"config file '{path}': invalid JSON ({e})") from None
    if not isinstance(cfg, dict):
        raise SweepInputError(f"config file '{path}': expected a JSON object")
    cfg = {**cfg, **cfg.get("text_config", {})} if isinstance(cfg.get("text_config"), dict) else cfg
    src = f"config.json ({path})"
    arch = {}
    for ours, keys in HF_KEYS.items():
        for k in keys:
            if cfg.get(k) is not None:
                val = cfg[k]
                if isinstance(val, bool):
                    val = float(val)
                arch[ours] = Value(float(V.number(src, k, val)), src, "measured", 0.0)
                break
    missing = [hf for ours, hf in HF_REQUIRED.items() if ours not in arch]
    if missing:
        raise MissingFieldError(
            f"{src}: missing required field(s) {missing}; required: {', '.join(HF_REQUIRED.values())}"
        )
    mt = str(cfg.get("model_type", "")).lower()
    mk = lambda v: Value(float(v), src + " (derived)", "measured", 0.0)  # noqa: E731
    L = _hf_int(src, HF_REQUIRED["n_layers"], arch["n_layers"].value, "positive")
    gemma3, llama4 = mt in ("gemma3", "gemma3_text"), mt in ("llama4", "llama4_text")
    if arch.get("kv_lora_rank", Value(0)).value > 0:
        arch["mla"] = mk(1)
        if "head_dim" not in arch and "qk_nope_head_dim" in arch:
            arch["head_dim"] = mk(arch["qk_nope_head_dim"].value)
    if mt in ("qwen3", "qwen3_moe") or gemma3:
        arch["qk_norm"] = mk(1)
    if gemma3 and "tie_word_embeddings" not in arch:
        arch["tie_word_embeddings"] = mk(1)
    if mt in ("qwen2", "qwen2_moe", "gpt_oss") and "attention_bias" not in arch:
        arch["attention_bias"] = mk(1)
    n_local, window, chunked = _hf_local_attention(cfg, mt, L, src)
    if n_local:
        arch["n_window_layers"] = mk(n_local)
        arch["attention_window_tokens"] = mk(window)
        if chunked:
            arch["chunked_attention"] = mk(1)
    if arch.get("n_experts", Value(0)).value > 0:
        _hf_experts(cfg, arch, llama4, L, src, mk)
    if name is None:
        raw = cfg.get("_name_or_path") or path.parent.name or path.stem
        name = str(raw).rstrip("/").split("/")[-1].lower()
    entry = ModelEntry(name=name, arch=_complete(name, arch, f"{src}: model "), aliases=(), origin=str(path))
    return dataclasses.replace(
        entry, paper_kernel=paper_kernel_for(entry, default_model_catalog().kernel_table)
    )


def model_table(entry: ModelEntry) -> dict:
    """One entry as a catalog table (a dict for a TOML writer; `sweep model import` saves it)."""
    provenance = {(v.source, v.quality) for v in entry.arch.values()}
    table = dict(zip(("source", "quality"), next(iter(provenance)))) if len(provenance) == 1 else {}
    if entry.aliases:
        table["aliases"] = list(entry.aliases)
    for k in ARCH_FIELDS + PAPER_FIELDS:
        if k in entry.arch:
            v = entry.arch[k]
            num = int(v.value) if float(v.value).is_integer() and abs(v.value) < 2**53 else v.value
            table[k] = (
                num if len(provenance) == 1 else {"value": num, "source": v.source, "quality": v.quality}
            )
    return table


# ---------------------------------------------------------------------------------------------
# Catalog


@dataclass
class ModelCatalog(Catalog):
    """Model id -> ModelEntry (case-insensitive, aliases accepted), plus the paper's MoE kernel table."""

    kernel_table: list = field(default_factory=list)
    kind = "model"

    def get(self, name: str) -> ModelEntry:
        """The entry of `name`, with the paper kernel data for its shape attached."""
        e = self.entries[self.resolve(name)]
        return ModelEntry(e.name, e.arch, e.aliases, e.origin, paper_kernel_for(e, self.kernel_table))


def paper_kernel_for(entry: ModelEntry, table: list) -> dict:
    """The planner's MoE kernel latency for this model's shape (paper convention only).

    Exact shape match in the table, else extrapolated from the first table row in proportion to
    the active expert bytes per layer (top_k·hidden·moe_inter): our assumption, not the planner's
    (docs/models.md gives the table only for Qwen3-235B's shape). Dense models: {}.
    """
    if not entry.is_moe or not table:
        return {}
    shape = tuple(
        entry.value(k) for k in ("n_experts", "experts_per_token", "hidden_size", "moe_intermediate_size")
    )
    for row in table:
        if (
            tuple(row[k] for k in ("n_experts", "experts_per_token", "hidden_size", "moe_intermediate_size"))
            == shape
        ):
            return dict(row, quality=row.get("quality", "measured"))
    row = table[0]
    scale = (shape[1] * shape[2] * shape[3]) / (
        row["experts_per_token"] * row["hidden_size"] * row["moe_intermediate_size"]
    )
    return dict(row, latency_s_per_layer=row["latency_s_per_layer"] * scale, quality="projected")


def _read_kernel_rows(raw, origin) -> list:
    rows = []
    for i, r in enumerate(raw):
        vals, _ = parse_entry(f"paper_moe_kernel[{i}]", r, numeric_keys=KERNEL_KEYS, where=f"{origin}: ")
        missing = [k for k in KERNEL_KEYS if k not in vals]
        if missing:
            raise MissingFieldError(f"{origin}: paper_moe_kernel[{i}]: missing field(s) {missing}")
        rows.append({k: v.value for k, v in vals.items()} | {"source": r.get("source", "")})
    return rows


def load_model_catalog(extra_files=(), inline: dict | None = None, hf_configs=()) -> ModelCatalog:
    """Built-in catalog, then extra TOML files, imported config.json files, inline {name: table}."""
    cat = ModelCatalog()
    for path in (CATALOG_PATH, *extra_files):
        doc = read_toml(path)
        bad = set(doc) - {"models", "paper_moe_kernel"}
        if bad:
            raise InvalidValueError(
                f"{path}: unknown top-level table(s) {sorted(bad)}; allowed: models, paper_moe_kernel"
            )
        cat.kernel_table.extend(_read_kernel_rows(doc.get("paper_moe_kernel", []), str(path)))
        for name, table in doc.get("models", {}).items():
            cat.add(model_entry_from_table(name, table, origin=str(path)))
    for p in hf_configs:
        cat.add(import_hf_config(p))
    for name, table in (inline or {}).items():
        cat.add(model_entry_from_table(name, table, origin="inline"))
    return cat


@functools.cache
def default_model_catalog() -> ModelCatalog:
    """The built-in catalog, read once."""
    return load_model_catalog()


def get_model(name: str, catalog: ModelCatalog | None = None) -> ModelEntry:
    """Catalog entry for `name` (default catalog unless given), paper kernel data attached."""
    return (catalog or default_model_catalog()).get(name)


def model_arrays(entries) -> dict:
    """Stack ModelEntries into a dict of float64 arrays of shape (K,)."""
    dicts = [e.arrays() for e in entries]
    return {k: jnp.stack([d[k] for d in dicts]) for k in MODEL_FIELDS}
