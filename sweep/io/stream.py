"""Streaming a grid to disk block by block, resumable: NetCDF (`.nc`) or Zarr (`.zarr`).

A streamed run writes its data to `<target>.partial` (a file for NetCDF, a directory for Zarr). After each
block's values are on disk (NetCDF: synced), its id is appended to the log `<target>.partial.done-<p>` of
process p, flushed and fsynced. The first line of a log is the run's key, a hash of everything that
fixes the data (grid, outputs, dtype, blocks, compression, and the contents of every input file: catalogs,
calibration, workloads); its second line records each input file's digest, so that a resume after an
input file was edited is refused with an error naming that file. The target itself is replaced only when
every block is done, by renaming the partial onto it, so a killed run (Ctrl-C, SIGKILL, a full disk) never
leaves a corrupt or partial file at the target. `resume=True` reopens a partial with the same key and
computes only the blocks missing from its logs; the blocks are deterministic, so the finished data equal a
run that was never interrupted, bit for bit.

Each block is one chunk of the file, so processes writing their own blocks never share a chunk (Zarr).
The file's metadata (coordinates, small variables, attributes and the CF encoding) is written by xarray
from a skeleton Dataset; the streamed variables are added with the format's own library (netCDF4, zarr).
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import shutil
import threading
import warnings

import numpy as np
import xarray as xr

from sweep.errors import SweepInputError, SweepWarning
from sweep.io.files import _cause, check_folder, remove_stale_temps, resolve_target

STREAMING: dict = {}  # target -> Stream being written (read by the CLI's signal handler)


def output_format(path) -> str:
    """'zarr' for a path ending in .zarr, else 'netcdf'."""
    return "zarr" if os.fspath(path).rstrip("/").lower().endswith(".zarr") else "netcdf"


def check_zarr_target(path) -> str:
    """The real path of a Zarr target: absent, or a directory holding a Zarr store (which is replaced)."""
    path = os.fspath(path).rstrip("/")
    real = os.path.realpath(path)
    if os.path.exists(real):
        is_store = os.path.isdir(real) and any(
            os.path.exists(os.path.join(real, n)) for n in ("zarr.json", ".zgroup")
        )
        if not is_store:
            raise SweepInputError(
                f"{path}: cannot write output: it exists and is not a Zarr store; only a Zarr store is replaced"
            )
    check_folder(real, path)
    return real


def run_key(*parts) -> str:
    """A hash of what fixes the data of a streamed run (JSON of `parts`)."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


INPUTS_PREFIX = "inputs "  # the log line recording the input files' digests (not a block id)
CHUNK_BYTES = 1 << 20


def file_digests(paths) -> dict:
    """absolute real path -> SHA-256 of the file's bytes ("absent" where there is no such file), for the
    run key: a partial output is resumed only with the input files it was computed from."""
    digests = {}
    for path in paths:
        real = os.path.realpath(path)
        if not os.path.isfile(real):
            digests[real] = "absent"
            continue
        digest = hashlib.sha256()
        with open(real, "rb") as f:
            for chunk in iter(lambda: f.read(CHUNK_BYTES), b""):
                digest.update(chunk)
        digests[real] = digest.hexdigest()
    return digests


def changed_input(recorded: dict, now: dict) -> str | None:
    """The first input file named both in a partial's log and now whose contents differ, with how."""
    for path in sorted(recorded.keys() & now.keys()):
        old, new = recorded[path], now[path]
        if old != new:
            how = "was removed" if new == "absent" else "was created" if old == "absent" else "changed"
            return f"{path} {how}"
    return None


def _json_safe(attrs: dict) -> dict:
    return {k: (v.tolist() if isinstance(v, np.ndarray | np.generic) else v) for k, v in attrs.items()}


class Stream:
    """The partial output of one process of a streamed run.

    `streamed` maps each block-written variable to (dims, chunk shape, dtype, attrs); `skeleton` is a
    Dataset with everything else (coordinates, small variables, global attributes), written at creation
    and rewritten by `finish` (which gets the small variables' final values).
    """

    def __init__(
        self, target, key: str, n_blocks: int, *, process: int = 0, compression: int = 0, inputs=None
    ):
        self.format = output_format(target)
        self.target = os.fspath(target).rstrip("/")
        self.real = check_zarr_target(self.target) if self.format == "zarr" else resolve_target(self.target)
        self.partial = self.real + ".partial"
        self.key, self.n_blocks, self.process = key, n_blocks, process
        self.inputs = dict(inputs or {})  # input file -> digest (file_digests), recorded in each log
        self.compression = int(compression)
        self.lock = threading.Lock()  # held while a block is written (the signal handler waits for it)
        self.done: set = set()
        self.written = 0  # blocks written by this process in this run
        self._file = None
        self._log = None

    # -- the record of finished blocks -------------------------------------------------------------

    def _log_path(self, process: int) -> str:
        return f"{self.partial}.done-{process}"

    def _logs(self) -> list:
        return sorted(glob.glob(glob.escape(self.partial) + ".done-*"))

    def recorded(self) -> set | None:
        """The ids of the blocks recorded as done in the partial's logs; None if there is no partial of
        this run (absent, or written by a different grid: SweepInputError)."""
        logs = self._logs()
        if not os.path.exists(self.partial) or not logs:
            return None
        done = set()
        for log in logs:
            with open(log, encoding="utf-8") as f:
                lines = f.read().split("\n")
            if lines[0] != self.key:
                self._refuse_changed_input(lines)
                raise SweepInputError(
                    f"{self.partial}: cannot resume: the partial output was written by a different grid, outputs, "
                    f"dtype or chunking; run without --resume to start again (the partial is then replaced)"
                )
            done |= {int(line) for line in lines[1:-1] if line.isdigit()}  # a torn last line is ignored
        return done

    def _refuse_changed_input(self, lines: list) -> None:
        """A one-line error naming the input file that changed, if the log records one (else nothing)."""
        recorded = {}
        if len(lines) > 1 and lines[1].startswith(INPUTS_PREFIX):
            try:
                recorded = json.loads(lines[1][len(INPUTS_PREFIX) :])
            except json.JSONDecodeError:
                return
        changed = changed_input(recorded, self.inputs) if isinstance(recorded, dict) else None
        if changed:
            raise SweepInputError(
                f"{self.partial}: cannot resume: input file {changed} since the partial output was written; "
                "run without --resume to start again (the partial is then replaced)"
            )

    def discard(self) -> None:
        """Remove the partial output and its logs."""
        for log in self._logs():
            os.remove(log)
        if os.path.isdir(self.partial):
            shutil.rmtree(self.partial)
        elif os.path.exists(self.partial):
            os.remove(self.partial)

    # -- creating and opening ------------------------------------------------------------------------

    def create(self, skeleton: xr.Dataset, streamed: dict) -> None:
        """Write a new partial: the skeleton with xarray, then the empty streamed variables."""
        remove_stale_temps(os.path.dirname(self.real))
        self.discard()
        try:
            if self.format == "netcdf":
                skeleton.to_netcdf(self.partial, engine="netcdf4", format="NETCDF4")
                self._open()
                for name, (dims, chunks, dtype, attrs) in streamed.items():
                    float_ = np.dtype(dtype).kind == "f"
                    var = self._file.createVariable(
                        name,
                        dtype,
                        dims,
                        chunksizes=chunks,
                        zlib=self.compression > 0,
                        complevel=self.compression or 4,
                        fill_value=np.nan if float_ else False,
                    )
                    var.setncatts(attrs)
                self._file.sync()
            else:
                import zarr
                from zarr.codecs import ZstdCodec

                skeleton.to_zarr(self.partial, mode="w", consolidated=False)
                group = zarr.open_group(self.partial, mode="r+")
                compressors = [ZstdCodec(level=self.compression)] if self.compression else None
                for name, (dims, chunks, dtype, attrs) in streamed.items():
                    group.create_array(
                        name,
                        shape=tuple(skeleton.sizes[d] for d in dims),
                        chunks=chunks,
                        dtype=dtype,
                        fill_value=np.nan if np.dtype(dtype).kind == "f" else 0,
                        dimension_names=dims,
                        attributes=_json_safe(attrs),
                        compressors=compressors,
                    )
                self._open()
        except (OSError, RuntimeError) as exc:
            cause = _cause(exc, os.path.dirname(self.real))
            self.close()
            self.discard()  # nothing is saved yet
            raise SweepInputError(f"{self.target}: cannot write output: {cause}") from None

    def start_log(self) -> None:
        """Open this process's log for appending (a new log starts with the run's key)."""
        path = self._log_path(self.process)
        new = not os.path.exists(path)
        self._log = open(path, "a", encoding="utf-8")  # noqa: SIM115 (closed by close())
        if new:
            self._log.write(self.key + "\n")
            self._log.write(INPUTS_PREFIX + json.dumps(self.inputs, sort_keys=True) + "\n")
            self._sync_log()

    def _sync_log(self) -> None:
        self._log.flush()
        os.fsync(self._log.fileno())

    def _open(self) -> None:
        if self.format == "netcdf":
            import netCDF4

            self._file = netCDF4.Dataset(self.partial, "a")
        else:
            import zarr

            self._file = zarr.open_group(self.partial, mode="r+")

    def reopen(self) -> bool:
        """Open an existing partial for more blocks; False (with a warning) if it cannot be read."""
        try:
            self._open()
            return True
        except (OSError, RuntimeError) as exc:
            warnings.warn(
                f"{self.partial}: the partial output cannot be read ({exc}); starting again",
                SweepWarning,
                stacklevel=3,
            )
            return False

    # -- blocks ---------------------------------------------------------------------------------------

    def write(self, block_id: int, values: dict) -> None:
        """Write one block: `values` maps each streamed variable to (region, array); then record it."""
        with self.lock:
            try:
                for name, (region, array) in values.items():
                    self._file[name][region] = array
                if self.format == "netcdf":
                    self._file.sync()
                self._log.write(f"{block_id}\n")
                self._sync_log()
            except (OSError, RuntimeError) as exc:
                raise SweepInputError(
                    f"{self.target}: cannot write output: {_cause(exc, os.path.dirname(self.real))}; "
                    f"{len(self.done) + self.written} of {self.n_blocks} blocks are saved in {self.partial}: "
                    "free space and run the same command with --resume"
                ) from None
            self.written += 1

    def finish(self, small: dict) -> None:
        """Write the small variables' values, close, and rename the partial onto the target."""
        with self.lock:
            for name, array in small.items():
                self._file[name][...] = array
            self.close()
            for log in self._logs():
                os.remove(log)
            if self.format == "netcdf":
                os.replace(self.partial, self.real)
            else:
                old = f"{self.real}.old-{os.getpid()}"
                if os.path.exists(self.real):
                    os.rename(self.real, old)
                os.rename(self.partial, self.real)
                shutil.rmtree(old, ignore_errors=True)

    def close(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None
        if self._file is not None and self.format == "netcdf":
            self._file.close()
        self._file = None

    def saved(self) -> str:
        """One line: what is saved and how to finish (for an interrupt)."""
        return (
            f"{len(self.done) + self.written} of {self.n_blocks} blocks saved in {self.partial}; "
            "run the same command with --resume to finish"
        )


def open_result(path) -> xr.Dataset:
    """A result written by sweep, opened lazily (values are read from disk when used): a directory as a
    Zarr store, anything else as NetCDF; a one-line `SweepInputError` naming the file otherwise."""
    path = os.fspath(path).rstrip("/")
    if not os.path.exists(path):
        raise SweepInputError(f"{path}: cannot read result: no such file (it does not exist)")
    zarr_store = os.path.isdir(path)
    try:
        return xr.open_dataset(
            path,
            engine="zarr" if zarr_store else "netcdf4",
            chunks=None,
            decode_timedelta=False,
            decode_times=False,
            **({"consolidated": False} if zarr_store else {}),
        )
    except PermissionError:
        reason = "permission denied"
    except Exception as exc:  # noqa: BLE001 (any reader failure is one line naming the file)
        reason = str(exc).splitlines()[0].split(". ")[0] if str(exc) else type(exc).__name__
        reason = f"not a NetCDF file or zarr store xarray can open ({reason})"
    raise SweepInputError(f"{path}: cannot read result: {reason}")


def write_zarr(ds: xr.Dataset, path) -> None:
    """Write an in-memory Dataset as a Zarr store at `path`, atomically (written beside it, then renamed)."""
    real = check_zarr_target(path)
    partial = f"{real}.partial"
    if os.path.isdir(partial):
        shutil.rmtree(partial)
    try:
        ds.to_zarr(partial, mode="w", consolidated=False)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    old = f"{real}.old-{os.getpid()}"
    if os.path.exists(real):
        os.rename(real, old)
    os.rename(partial, real)
    shutil.rmtree(old, ignore_errors=True)
