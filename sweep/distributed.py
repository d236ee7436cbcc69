"""Many machines: one grid's blocks shared out over the processes of a `jax.distributed` job.

Every process runs the same `sweep run … -o out.zarr --distributed`; process p of P computes the blocks
p, p + P, … on its own devices and writes them to their own chunks of the Zarr store; process 0 creates
the store and finishes it. `jax.distributed` starts the job (it finds the coordinator, the process count
and each process's index itself under SLURM, Open MPI and on Cloud TPU, or from the arguments) and
provides the barriers; see docs/scaling.md.
"""

from __future__ import annotations

import jax


def initialize(
    coordinator: str | None = None, processes: int | None = None, process: int | None = None
) -> None:
    """Join the job (`jax.distributed.initialize`); with no arguments, the cluster's environment says."""
    if jax.distributed.is_initialized():
        return
    jax.distributed.initialize(coordinator_address=coordinator, num_processes=processes, process_id=process)


def share() -> tuple:
    """(this process's index, the number of processes) of the job (0, 1 outside one)."""
    return jax.process_index(), jax.process_count()


def barrier(name: str, processes: int) -> None:
    """Wait until every process of the job reaches the barrier `name` (nothing with one process)."""
    if processes > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(name)
