"""`sweep model import`: add a model to a catalog from a local Hugging Face config.json."""

from __future__ import annotations


def cmd_model_import(args) -> int:
    from sweep.catalogs import import_model
    from sweep.catalogs.user import user_catalog_files

    name, target = import_model(args.config, name=args.name, catalog=args.catalog)
    where = "the user catalog" if target.as_posix() in user_catalog_files("models") else "a catalog file"
    print(f"added model {name!r} to {where} {target}")
    if where == "a catalog file":
        print(f'use it in a grid with model_catalogs = ["{target}"]')
    return 0


def add_parser(sub) -> None:
    """Add the `model` subcommand to the subparsers `sub`."""
    p_model = sub.add_parser("model", help="manage the model catalog")
    model_sub = p_model.add_subparsers(dest="model_command", required=True, metavar="ACTION")
    p_import = model_sub.add_parser(
        "import",
        help="add a model from a local Hugging Face config.json (no network)",
        description="Read a local config.json and add the architecture to the user model catalog "
        "($SWEEP_HOME/models.toml, default ~/.sweep/models.toml), which every grid reads; or to --catalog FILE, "
        "which a grid names in model_catalogs.",
    )
    p_import.add_argument("config", help="path to config.json")
    p_import.add_argument(
        "--name",
        help="model id to use (default: derived from the config): lower-case "
        "letters, digits, '.', '-' and '_', starting with a letter or digit",
    )
    p_import.add_argument("--catalog", help="catalog TOML file to add to (default: the user catalog)")
    p_import.set_defaults(func=cmd_model_import)
