"""Connecting to Ray: the only place (with the task bodies next to it) that imports ``ray``.

``address`` means what ``--ray [ADDRESS]`` means on the command line:

- ``None``: ``RAY_ADDRESS`` when it is set, else a new local Ray instance sized to this machine
  (all its CPUs and GPUs), shut down again when the work is done;
- ``"local"``: a new local instance even when ``RAY_ADDRESS`` is set;
- anything else (``"10.0.0.5:6379"``, ``"auto"``, ``"ray://head:10001"``): join that cluster.

When Ray is already initialised in this process (a script or a test did ``ray.init``), that
instance is used and left running.  Start-up is kept quiet: no dashboard, no usage-statistics
or token-authentication notices, and workers' own output is not echoed into the driver's terminal
(errors still surface as task exceptions).
"""

from __future__ import annotations

import logging
import os
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator

log = logging.getLogger("studio")

INSTALL = "pip install -e '.[ray]'"
#: Times Ray re-runs a task whose worker process died (a crash, an OOM kill, a lost node).
MAX_RETRIES = 3


class ScaleError(ValueError):
    """Ray is missing, unreachable, or asked for something it cannot do; one sentence for the user."""


def import_ray() -> Any:
    """The ``ray`` module.

    Raises:
        ScaleError: Ray is not installed (the message says how to install it).
    """
    try:
        import ray
    except ImportError:
        raise ScaleError(f"--ray needs Ray, which is not installed; install it with {INSTALL} "
                         "(or pip install 'ray[default]').") from None
    return ray


@dataclass(frozen=True)
class ClusterInfo:
    """What the tasks can use: CPUs and GPUs over all nodes, and the node count."""

    cpus: int
    gpus: int
    nodes: int

    def __str__(self) -> str:
        return f"{self.nodes} node(s), {self.cpus} CPUs, {self.gpus} GPUs"


def cluster_info(ray: Any) -> ClusterInfo:
    """The resources of the connected cluster."""
    res = ray.cluster_resources()
    nodes = sum(1 for n in ray.nodes() if n.get("Alive"))
    return ClusterInfo(int(res.get("CPU", 0)), int(res.get("GPU", 0)), nodes)


@contextmanager
def ray_session(address: str | None = None) -> Iterator[Any]:
    """Connect to Ray for the duration of a ``with`` block; yields the ``ray`` module.

    Raises:
        ScaleError: Ray is not installed or the cluster at ``address`` cannot be reached.
    """
    ray = import_ray()
    if ray.is_initialized():
        yield ray
        return
    if address is None:
        address = os.environ.get("RAY_ADDRESS") or "local"
    quiet = {"log_to_driver": False, "logging_level": logging.WARNING}
    try:
        if address == "local":
            os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
            # RAY_ADDRESS would make ray.init join that cluster instead of starting one.
            saved = os.environ.pop("RAY_ADDRESS", None)
            # Ray turns on token authentication for a new local instance (keep it) and warns that it did.
            auth_log = logging.getLogger("ray._private.authentication.authentication_token_setup")
            level = auth_log.level
            auth_log.setLevel(logging.ERROR)
            try:
                ray.init(include_dashboard=False, **quiet)
            finally:
                auth_log.setLevel(level)
                if saved is not None:
                    os.environ["RAY_ADDRESS"] = saved
        else:
            ray.init(address=address, **quiet)
    except (ConnectionError, TimeoutError, RuntimeError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ScaleError(f"cannot connect to the Ray cluster at {address} ({first.rstrip('.')}); start one there "
                         "with `ray start --head`, or check the address.") from None
    log.debug("ray: %s", cluster_info(ray))
    try:
        yield ray
    finally:
        ray.shutdown()


def task_error(ray: Any, exc: BaseException) -> BaseException:
    """The user's error inside a failed Ray task (``RayTaskError`` wraps it), else ``exc`` itself."""
    from ..errors import user_errors

    cause = getattr(exc, "cause", None) if isinstance(exc, ray.exceptions.RayTaskError) else None
    return cause if isinstance(cause, user_errors()) else exc
