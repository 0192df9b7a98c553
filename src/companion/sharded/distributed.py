"""Several processes (hosts, or one process per GPU) joining one JAX runtime.

JAX reads the coordinator's address from ``JAX_COORDINATOR_ADDRESS`` itself;
:func:`initialize` also reads ``JAX_NUM_PROCESSES`` and ``JAX_PROCESS_ID`` (names in the
same family), selects gloo for the CPU backend's cross-process collectives (it has none by
default), and calls ``jax.distributed.initialize``. Afterwards ``jax.devices()`` lists the
devices of every process, and :func:`companion.sharded.train` with ``devices=None`` spans
them all. Each process runs the same script on the same data and receives every result.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import jax

__all__ = ["ENVIRONMENT", "initialize"]

#: The variables that describe a multi-process run.
ENVIRONMENT = ("JAX_COORDINATOR_ADDRESS", "JAX_NUM_PROCESSES", "JAX_PROCESS_ID")


def _integer(name: str, text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"{name} must be an integer, got {text!r}") from None


def initialize(environ: Mapping[str, str] | None = None, *, timeout: int = 300) -> bool:
    """Join the multi-process run the environment describes; False when it describes none.

    Call it first, before anything runs JAX. Every process sets
    ``JAX_COORDINATOR_ADDRESS=host:port`` (process 0's host, a free port),
    ``JAX_NUM_PROCESSES=N`` and its own ``JAX_PROCESS_ID`` (0 .. N-1).

    Args:
        environ: the variables (default ``os.environ``).
        timeout: seconds to wait for every process to join.

    Raises:
        ValueError: some variables set and others not, or malformed.

    Example:
        >>> initialize({})
        False
        >>> initialize({"JAX_COORDINATOR_ADDRESS": "127.0.0.1:1234"})
        Traceback (most recent call last):
        ...
        ValueError: JAX_NUM_PROCESSES, JAX_PROCESS_ID not set: a multi-process run needs ...
    """
    env = os.environ if environ is None else environ
    given = {name: env.get(name, "") for name in ENVIRONMENT}
    if not any(given.values()):
        return False
    missing = [name for name, value in given.items() if not value]
    if missing:
        raise ValueError(
            f"{', '.join(missing)} not set: a multi-process run needs all of "
            f"{', '.join(ENVIRONMENT)} (the coordinator's host:port, the number of "
            "processes, and this process's rank from 0)"
        )
    address = given["JAX_COORDINATOR_ADDRESS"]
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(
            f"JAX_COORDINATOR_ADDRESS must be host:port (process 0's host and a free port), "
            f"got {address!r}"
        )
    count = _integer("JAX_NUM_PROCESSES", given["JAX_NUM_PROCESSES"])
    rank = _integer("JAX_PROCESS_ID", given["JAX_PROCESS_ID"])
    if count < 1 or not 0 <= rank < count:
        raise ValueError(
            f"JAX_PROCESS_ID={rank} with JAX_NUM_PROCESSES={count}: ranks run from 0 to "
            "JAX_NUM_PROCESSES - 1, one per process"
        )
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(address, count, rank, initialization_timeout=timeout)
    return True
