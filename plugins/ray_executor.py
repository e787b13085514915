"""The `ray` executor: measurements on a Ray cluster, or on a Ray started on this machine.

Only measurements travel. The coordinator (the loop, the agent, the keep decision, the
budget and the store) stays where the run was started; the recipe folder goes to the
cluster once as a Ray object, and each measurement is a Ray task that unpacks it once per
worker process, materializes the candidate in a fresh work folder there and measures it
with the same code and process rules as on this machine (`LocalExecutor`: time limit,
process group, output caps). The `Outcome` comes back.

Metrics that call language models are refused: their calls would bypass the run's model
gateway (its budget reservations and the keys the recipe was trusted to send).

Ray is imported here, and only when a recipe asks for it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import os
import socket
import tarfile
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

from overnight.api import hookimpl
from overnight.core import process
from overnight.core.contracts import Executor, Measurement, MeasureRequest, Outcome
from overnight.core.errors import OvernightError
from overnight.core.executor import LocalExecutor
from overnight.core.workfolder import IGNORE
from overnight.core.options import Option

POLL = 0.2  # seconds between looks at a stop request while a measurement runs on the cluster
REACH_SECONDS = 5.0  # how long a cluster's address may take to answer before it is called unreachable
LOCAL = {"localhost", "127.0.0.1", "::1", ""}


class Died(Exception):
    """The Ray worker (or its node) running a measurement died."""

    def __init__(self, where: str):
        super().__init__(where)
        self.where = where


class Stopped(Exception):
    """The run was stopped while the measurement was in flight."""


class RayExecutor(Executor):
    """`[executor] kind = "ray"`: each measurement is a Ray task reserving num_cpus/num_gpus."""

    name = "ray"
    summary = "measures on a Ray cluster (or a local Ray), many at once"
    runs_code = uses_llm = False  # the metrics run code and call models, not where they run
    options = {
        "address": Option(str, "the cluster: 'auto', 'head:6379' or 'ray://head:10001'; none starts a local Ray",
                          default=None),
        "num_cpus": Option(float, "CPUs each measurement reserves", default=1.0, min=0),
        "num_gpus": Option(float, "GPUs each measurement reserves; fractional allowed", default=0.0, min=0),
        "runtime_env": Option(dict, "passed to Ray for each measurement (pip packages, env_vars)", default=None),
    }

    def __init__(self, options: dict, payload_ref, key: str):
        import ray

        self.ray = ray
        self.options = options
        self.payload_ref, self.key = payload_ref, key
        self.task = ray.remote(_measure).options(
            num_cpus=options.get("num_cpus", 1.0), num_gpus=options.get("num_gpus", 0.0),
            runtime_env=options.get("runtime_env") or None, max_retries=0, retry_exceptions=False)
        self.lock = threading.Lock()
        self.running: dict[int, dict] = {}  # measurements in flight: where each runs, once it has started

    @classmethod
    def create(cls, options, recipe, surface, objective) -> "RayExecutor":
        calls = [m.name for m in objective.all_metrics() if m.uses_llm]
        if calls:
            raise OvernightError(
                f"{recipe.path}: [executor] ray: the metric '{calls[0]}' calls a language model, and measurements "
                f"on Ray cannot go through the run's model gateway (its budget and keys); use kind = \"local\".")
        ray = connect(options.get("address"), recipe.path)
        data = pack(recipe.dir)
        key = hashlib.sha256(data + recipe.text.encode()).hexdigest()[:16]
        return cls(options, ray.put((data, recipe)), key)

    @classmethod
    def ships_to(cls, options: dict) -> str | None:
        """The cluster the work folder goes to when it is not this machine (for the trust prompt)."""
        address = options.get("address")
        if address is None:
            return None
        if address == "auto":
            return "the Ray cluster this machine is part of (address auto)"
        host = urlsplit(address if "://" in address else f"ray://{address}").hostname or ""
        return None if host in LOCAL else f"the Ray cluster at {address}"

    def in_flight(self) -> list[dict]:
        """Where each measurement in flight runs: node, ip and worker pid (once it has started)."""
        with self.lock:
            return [dict(w) for w in self.running.values() if w]

    def measure(self, view: str, request: MeasureRequest, guards: bool = True) -> Outcome:
        start = time.monotonic()
        try:
            try:
                return self._attempt(view, request, guards)
            except Died:  # a worker or node lost: once more, wherever Ray places it
                return self._attempt(view, request, guards)
        except Died as exc:
            return Outcome(Measurement.crash(f"the Ray worker running it died ({exc.where}), and again on the retry",
                                             seconds=time.monotonic() - start))
        except Stopped:
            return Outcome(Measurement.crash("the run was stopped; the measurement on Ray was cancelled",
                                             seconds=time.monotonic() - start))

    def _attempt(self, view: str, request: MeasureRequest, guards: bool) -> Outcome:
        ray = self.ray
        gen = self.task.remote(self.key, [self.payload_ref], view, request, guards)
        token = id(gen)
        with self.lock:
            self.running[token] = {}
        where = "node unknown: it died before it started"
        try:
            started = ray.get(self._next(gen))
            where = f"node {started['ip']} {started['node'][:8]}, pid {started['pid']}"
            with self.lock:
                self.running[token] = started
            return ray.get(self._next(gen))
        except Stopped:
            ray.cancel(gen)  # the task's command gets KeyboardInterrupt: its process group is killed
            raise
        except (ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError, ray.exceptions.ObjectLostError,
                ray.exceptions.LocalRayletDiedError):
            raise Died(where) from None
        except ray.exceptions.RayTaskError as exc:
            cause = exc.cause if isinstance(exc.cause, BaseException) else exc
            return Outcome(Measurement.crash(f"the measurement failed on Ray: {type(cause).__name__}: {cause}",
                                             str(exc)[-4000:]))
        except ray.exceptions.RayError as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
            return Outcome(Measurement.crash(f"Ray could not run the measurement: {first}"))
        finally:
            with self.lock:
                self.running.pop(token, None)

    def _next(self, gen):
        """The generator's next item, once ready; a stop request cancels the wait."""
        while True:
            if process.stopped():
                raise Stopped
            ready, _ = self.ray.wait([gen], timeout=POLL)
            if ready:
                return next(gen)


def connect(address: str | None, where: Path):
    """Ray, connected to the cluster the recipe names (or a local one); one sentence if it cannot be reached."""
    try:
        import ray
    except ImportError:
        raise OvernightError(f"{where}: [executor] kind = \"ray\" needs Ray, which is not installed here: "
                             "pip install 'overnight[ray]', or measure on this machine with kind = \"local\".") from None
    if address not in (None, "auto"):
        reachable(address, where)

    if ray.is_initialized():
        return ray
    how = {} if (address or "").startswith("ray://") else {"include_dashboard": False, "log_to_driver": False}
    try:
        ray.init(address=address, logging_level="ERROR", **how)
    except Exception as exc:
        said = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200].rstrip(".")
        what = f"the Ray cluster at {address}" if address else "a local Ray"
        raise OvernightError(f"{where}: [executor] ray: cannot reach {what} ({said}); start it with "
                             f"`ray start --head` or fix the address.") from None
    return ray


def reachable(address: str, where: Path) -> None:
    """A host:port that does not answer is said at once, not after Ray's own long retries."""
    parts = urlsplit(address if "://" in address else f"ray://{address}")
    try:
        host, port = parts.hostname, parts.port or (10001 if address.startswith("ray://") else 6379)
    except ValueError:
        host = port = None
    if not host:
        raise OvernightError(f"{where}: [executor] address {address!r} is not an address a Ray cluster has "
                             f"(write 'auto', 'head:6379' or 'ray://head:10001').")
    try:
        socket.create_connection((host, port), timeout=REACH_SECONDS).close()
    except OSError as exc:
        raise OvernightError(f"{where}: [executor] ray: cannot reach the Ray cluster at {address} "
                             f"({exc.strerror or exc}); start it with `ray start --head` or fix the address.") from None


def pack(folder: Path) -> bytes:
    """The recipe folder as a gzipped tar, without what a local work folder leaves out too."""

    def keep(info: tarfile.TarInfo):
        parent, _, name = info.name.rpartition("/")
        return None if IGNORE(parent, [name]) else info

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        tar.add(folder, arcname=".", filter=keep)
    return buf.getvalue()


# -- on the worker ------------------------------------------------------------------------

_built: dict[str, LocalExecutor] = {}
_built_lock = threading.Lock()


def _measure(key: str, boxed: list, view: str, request: MeasureRequest, guards: bool):
    """The Ray task: says where it runs, then measures and yields the Outcome."""
    import ray

    yield {"node": ray.get_runtime_context().get_node_id(), "ip": ray.util.get_node_ip_address(),
           "pid": os.getpid(), "host": socket.gethostname()}
    try:
        executor = _worker_executor(key, boxed[0])
    except Exception as exc:  # said here: an exception of ours may not travel back through Ray whole
        import traceback

        yield Outcome(Measurement.crash(f"the Ray worker could not set up the recipe: {type(exc).__name__}: {exc}",
                                        trace=traceback.format_exc()))
        return
    done: dict = {}
    # Measured in a thread of its own: Ray's cancel raises KeyboardInterrupt in this thread only
    # between bytecodes, so this one waits in short steps and ends the metric's commands then.
    thread = threading.Thread(target=lambda: done.setdefault("outcome", executor.measure(view, request, guards)),
                              daemon=True)
    thread.start()
    try:
        while thread.is_alive():
            thread.join(POLL)
    except BaseException:  # cancelled: one task runs at a time in a worker, so these are its commands
        process.kill_all()
        thread.join(5)
        process.allow()
        raise
    yield done.get("outcome") or Outcome(Measurement.crash("the measurement ended without an outcome"))


def _worker_executor(key: str, payload_ref) -> LocalExecutor:
    """The recipe's plugins, built once per worker process against its own copy of the folder."""
    with _built_lock:
        if key not in _built:
            import ray

            from overnight.core.setup import objective_of  # where it lives: no event loop or run loop to import on a worker

            data, recipe = ray.get(payload_ref)
            home = Path(tempfile.mkdtemp(prefix=f"overnight-ray-{key}-"))
            with tarfile.open(fileobj=io.BytesIO(data)) as tar:
                # overnight packed this from the trusted recipe folder itself: its links stay as they
                # were (one to a file beside the folder still means it on this machine), while no
                # entry may land outside `home`.
                tar.extractall(home, filter="tar")
            recipe = dataclasses.replace(recipe, path=home / recipe.path.name)
            surface = recipe.surface.build(home)
            objective = objective_of(recipe, home)
            for metric in objective.all_metrics():
                metric.prepare(surface)
            _built[key] = LocalExecutor(surface, objective)
        return _built[key]


@hookimpl
def overnight_register_executors(register):
    register(RayExecutor)
