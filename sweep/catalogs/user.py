"""The user catalog, `$SWEEP_HOME/{gpus,models}.toml` (default ~/.sweep): read by every grid, written by
`sweep model import`.

Written with a TOML writer (tomli-w), atomically (`sweep.io.files.write_atomic`). Model names are hub-style
ids (MODEL_NAME). A user catalog that does not load (invalid TOML, bad entries) is skipped with a warning
naming the file and line, so that grids over built-in names still run; a name found nowhere else then
fails with an error that mentions the skipped file.
"""

from __future__ import annotations

import os
import re
import tomllib
import warnings
from pathlib import Path

import tomli_w

from sweep.catalogs.provenance import read_toml
from sweep.errors import SweepInputError, SweepWarning
from sweep.io.files import write_atomic

MODEL_NAME = re.compile(r"[a-z0-9][a-z0-9._-]*")
NAME_RULE = "lower-case letters, digits, '.', '-' and '_', starting with a letter or digit (e.g. my-model-7b)"
HEADER = "# sweep user model catalog (sweep model import)\n"


def home() -> Path:
    return Path(os.environ.get("SWEEP_HOME", Path.home() / ".sweep"))


def user_catalog_files(kind: str) -> list:
    """`$SWEEP_HOME/<kind>.toml` (default ~/.sweep) if it exists: the user's own catalog."""
    path = home() / f"{kind}.toml"
    return [str(path)] if path.is_file() else []


def usable_user_catalog(kind: str) -> tuple[list, str]:
    """(files, note): the user catalog if it loads; else no file, a warning, and a note for name errors."""
    files = user_catalog_files(kind)
    if not files:
        return [], ""
    if kind == "gpus":
        from sweep.catalogs.gpus import load_gpu_catalog as load
    else:
        from sweep.catalogs.llms import load_model_catalog as load
    try:
        load(files)
    except SweepInputError as exc:
        warnings.warn(f"user catalog skipped: {exc}", SweepWarning, stacklevel=2)
        return [], f" (the user catalog was skipped: {exc})"
    return files, ""


def check_model_name(name: str, where: str) -> None:
    if not MODEL_NAME.fullmatch(name):
        raise SweepInputError(f"{where}: model name {name!r} is not allowed; use {NAME_RULE}")


def add_model(name: str, table: dict, target: Path) -> None:
    """Add `[models.<name>]` = `table` to the catalog file `target` (created if absent), atomically.

    The table is appended to the file's text (its comments stay) unless that would not parse to the
    intended document (e.g. `models` written as an inline table); then the whole file is rewritten.
    """
    doc, text = {}, HEADER
    if target.exists():
        try:
            doc = read_toml(target)
        except SweepInputError as exc:
            raise SweepInputError(f"{exc}; fix it or move it away, then import again") from None
        if name in doc.get("models", {}):
            raise SweepInputError(f"{target}: models.{name}: already in this catalog; choose another --name")
        text = target.read_text()
    want = {**doc, "models": {**doc.get("models", {}), name: table}}
    text = text.rstrip("\n") + "\n\n" + tomli_w.dumps({"models": {name: table}})
    try:
        appended = tomllib.loads(text) == want
    except tomllib.TOMLDecodeError:
        appended = False
    if not appended:
        text = HEADER + tomli_w.dumps(want)
    target.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(target, lambda tmp: Path(tmp).write_text(text))
