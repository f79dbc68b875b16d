"""``serve --workers N``: N uvicorn processes, each with its own listening socket.

uvicorn's own ``--workers`` hands one listening socket to every worker, and
whichever worker wakes first accepts every pending connection: under a load
generator that opens its connections at once, one worker got all 16 and the
other none (measured: two workers served exactly what one did). Here every
worker binds its own socket with ``SO_REUSEPORT``, so the kernel spreads new
connections over the workers' accept queues.

Each worker is pinned to a CPU of its own when there are exactly as many
workers as CPUs this process may use (``--cpu-affinity auto``, see
:func:`worker_cpus`): a worker that stays on one core keeps its caches warm,
where the scheduler otherwise moves it whenever another process (a load
generator, a sidecar) wakes on its core. Measured on this project's 2-core
machine, two-step flow in paired rounds: about 4% more certificates per
second.

The supervisor restarts a worker that dies (``kill -9``, a crash) and stops
every worker on ``SIGINT``/``SIGTERM``. A worker that dies within its first
seconds is a start-up failure (bad configuration, port taken by another
program): the supervisor then stops them all and exits non-zero instead of
restarting forever.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import shutil
import signal
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from multiprocessing.process import BaseProcess
from typing import Any

from passgeni_core import AuthorityError

__all__ = ["CPU_AFFINITY", "listen", "serve_workers", "uvicorn_options", "worker_cpus"]

#: ``--cpu-affinity`` choices (see :func:`worker_cpus`).
CPU_AFFINITY = ("auto", "on", "off")

log = logging.getLogger("passgeni_authority")

#: prometheus-client's multiprocess directory (``_metrics.MULTIPROC_ENV``).
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
#: A worker that exits sooner than this after starting failed to start.
STARTUP_SECONDS = 5.0
#: Grace given to workers to finish in-flight requests on shutdown.
STOP_SECONDS = 15.0


@contextlib.contextmanager
def shared_metrics(workers: int) -> Iterator[None]:
    """Several worker processes of another server (granian): prometheus-client's
    multiprocess mode in a directory of our own (unless the operator named one),
    removed at exit (see ``_metrics``)."""
    if workers < 2 or os.environ.get(MULTIPROC_ENV):
        yield
        return
    directory = tempfile.mkdtemp(prefix="passgeni-metrics-")
    os.environ[MULTIPROC_ENV] = directory
    try:
        yield
    finally:
        os.environ.pop(MULTIPROC_ENV, None)
        shutil.rmtree(directory, ignore_errors=True)


def listen(host: str, port: int, *, backlog: int = 2048) -> socket.socket:
    """A listening TCP socket on ``host:port`` that other workers may share (``SO_REUSEPORT``).

    Raises:
        AuthorityError: the address cannot be bound (in use, not local, bad host).
    """
    try:
        family, kind, proto, _name, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        raise AuthorityError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
        sock.listen(backlog)
    except OSError as exc:
        sock.close()
        raise AuthorityError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.set_inheritable(True)
    return sock


def uvicorn_options(log_level: str, log_format: str = "text") -> dict[str, Any]:
    """The uvicorn settings every way of serving the authority shares.

    ``proxy_headers`` off: the authority applies ``X-Forwarded-For`` itself,
    only from its configured trusted proxies (``trusted_proxies``); uvicorn's
    middleware would rewrite the client address first from its own list.
    The access log is written at ``info`` level and below only (it costs a
    log call per request even when filtered out).
    """
    from ._logs import log_config

    options: dict[str, Any] = {
        "log_level": log_level,
        "proxy_headers": False,
        "access_log": log_level in ("trace", "debug", "info"),
    }
    config = log_config(log_format, log_level)
    if config is not None:
        options["log_config"] = config
    return options


def worker_cpus(workers: int, mode: str, available: set[int] | None = None) -> list[int] | None:
    """The CPU each worker is pinned to (worker ``i`` gets ``cpus[i % len(cpus)]``),
    or ``None`` to leave the workers to the scheduler.

    ``auto`` pins only when ``workers`` equals the number of CPUs this
    process may run on (``available``, by default its affinity mask): one
    core per worker, nothing shared. A container limited by a CPU quota
    still sees every host CPU, so it is left alone. ``on`` pins round-robin
    whatever the counts; ``off`` never pins.

    Raises:
        ValueError: ``mode`` is not one of :data:`CPU_AFFINITY`.
    """
    if mode not in CPU_AFFINITY:
        raise ValueError(f"cpu affinity must be one of {', '.join(CPU_AFFINITY)}")
    if mode == "off" or workers < 2:
        return None
    cpus = sorted(os.sched_getaffinity(0) if available is None else available)
    if not cpus or (mode == "auto" and len(cpus) != workers):
        return None
    return cpus


def _worker(
    app_factory: str,
    host: str,
    port: int,
    log_level: str,
    cpu: int | None = None,
    log_format: str = "text",
) -> None:
    """One worker process: its own socket, one uvicorn server (runs until SIGTERM)."""
    import uvicorn

    if cpu is not None:
        try:
            os.sched_setaffinity(0, {cpu})
        except OSError as exc:  # the CPU went away (hotplug, cpuset changed): serve anyway
            log.warning("cannot pin the worker to CPU %s: %s", cpu, exc.strerror or exc)
    sock = listen(host, port)
    config = uvicorn.Config(app_factory, factory=True, **uvicorn_options(log_level, log_format))
    uvicorn.Server(config).run(sockets=[sock])


def serve_workers(
    app_factory: str,
    *,
    host: str,
    port: int,
    workers: int,
    log_level: str = "info",
    cpus: list[int] | None = None,
    log_format: str = "text",
) -> int:
    """Run ``workers`` processes serving ``app_factory`` (``module:function``) until a signal.

    Returns the exit status: 0 after ``SIGINT``/``SIGTERM``, 1 when a worker
    failed to start. With ``cpus`` (see :func:`worker_cpus`), worker ``i``
    (and whichever replaces it) runs on ``cpus[i % len(cpus)]`` only.

    Raises:
        AuthorityError: ``host:port`` cannot be bound.
    """
    # Fail here, with one clear message, if the address is unusable.
    listen(host, port).close()
    context = multiprocessing.get_context("spawn")
    stop = threading.Event()
    failed = threading.Event()
    # prometheus-client's multiprocess mode: every worker writes its metrics to
    # files in one directory and /metrics on any worker adds them all up.
    # A directory of our own (fresh, removed at exit) unless the operator named one.
    own_metrics_dir: str | None = None
    if not os.environ.get(MULTIPROC_ENV):
        own_metrics_dir = tempfile.mkdtemp(prefix="passgeni-metrics-")
        os.environ[MULTIPROC_ENV] = own_metrics_dir

    def start(index: int) -> tuple[BaseProcess, float]:
        cpu = cpus[index % len(cpus)] if cpus else None
        process = context.Process(
            target=_worker,
            args=(app_factory, host, port, log_level, cpu, log_format),
            name="passgeni-authority-worker",
            daemon=False,
        )
        process.start()
        return process, time.monotonic()

    def on_signal(_signum: int, _frame: Any) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    running = [start(i) for i in range(workers)]
    try:
        while not stop.wait(0.2):
            for i, (process, started) in enumerate(running):
                if process.is_alive():
                    continue
                if time.monotonic() - started < STARTUP_SECONDS:
                    log.error("an authority worker failed to start (exit %s)", process.exitcode)
                    failed.set()
                    stop.set()
                    break
                log.warning(
                    "authority worker %s exited (%s); restarting", process.pid, process.exitcode
                )
                running[i] = start(i)
    finally:
        for process, _ in running:
            if process.is_alive():
                process.terminate()  # SIGTERM: uvicorn finishes in-flight requests
        deadline = time.monotonic() + STOP_SECONDS
        for process, _ in running:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                process.kill()
                process.join()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if own_metrics_dir is not None:
            os.environ.pop(MULTIPROC_ENV, None)
            shutil.rmtree(own_metrics_dir, ignore_errors=True)
    return 1 if failed.is_set() else 0
