"""`sweep list`: catalog entries (profiles, GPUs, models, workloads) with provenance."""

from __future__ import annotations


def _prov(p) -> str:
    if p is None:
        return ""
    unc = f" ±{p.uncertainty:.0%}" if p.uncertainty else ""
    return f"  [{p.quality}{unc}] {p.source}"


def _list_profiles() -> None:
    from sweep.catalogs import profile_catalog

    for (gpu, model), prof in profile_catalog().items():
        print(f"{gpu} / {model}  (tp {prof.values['tp']:g})")
        for key, value in prof.values.items():
            print(f"    {key:<24} {value:<14g}{_prov(prof.provenance.get(key))}")
        print()


def _list_gpus() -> None:
    from sweep.catalogs import gpu_catalog

    catalog = gpu_catalog()
    for name in catalog.names():
        entry = catalog.get(name)
        aliases = f"  (aliases: {', '.join(entry.aliases)})" if entry.aliases else ""
        print(f"{name}{aliases}  from {entry.origin}")
        for key, value in entry.specs.items():
            print(f"    {key:<26} {value.value:<14g}{_prov(value)}")
        print()


def _list_models() -> None:
    from sweep.catalogs import model_catalog
    from sweep.physics.architecture import param_counts

    catalog = model_catalog()
    print(
        f"{'model':<22}{'params (B)':>11}{'active (B)':>11}{'layers':>7}{'heads':>6}{'kv':>4}{'head_dim':>9}"
        f"{'MoE':>9}  source"
    )
    for name in catalog.names():
        entry = catalog.get(name)
        counts = param_counts(entry.arrays(), "physical")
        moe = f"{entry.value('experts_per_token'):g}/{entry.value('n_experts'):g}" if entry.is_moe else "-"
        source = next(iter(entry.arch.values())).source
        print(
            f"{name:<22}{float(counts['total']) / 1e9:>11.2f}{float(counts['active']) / 1e9:>11.2f}"
            f"{entry.value('n_layers'):>7g}{entry.value('n_heads'):>6g}{entry.value('n_kv_heads'):>4g}"
            f"{entry.value('head_dim'):>9g}{moe:>9}  {source}"
        )


def _list_workloads() -> None:
    from sweep.catalogs import workload_names
    from sweep.fleet.workload import load_workload

    for name in workload_names():
        w = load_workload(name)
        lengths, cum = w.lengths_tokens, w.cum_fraction
        mean = float(
            sum((lengths[i] + lengths[i - 1]) / 2 * (cum[i] - cum[i - 1]) for i in range(1, len(cum)))
        )
        print(f"{name:<14} {len(cum) - 1} knots, up to {int(lengths[-1])} tokens, mean {mean:,.0f} tokens")
    print("sources: sweep/data/workloads/PROVENANCE.md")


LISTS = {"profiles": _list_profiles, "gpus": _list_gpus, "models": _list_models, "workloads": _list_workloads}


def cmd_list(args) -> int:
    LISTS[args.what]()
    return 0


def add_parser(sub) -> None:
    """Add the `lists` subcommand to the subparsers `sub`."""
    p_list = sub.add_parser("list", help="list catalog entries with provenance")
    p_list.add_argument("what", choices=list(LISTS), help="what to list")
    p_list.set_defaults(func=cmd_list)
