"""The test harness: real servers on free ports of 127.0.0.1, started and stopped cleanly.

Plain Python with no pytest import, so benchmarks, examples and scripts use it
too (``bench/`` imports only from here, never from test modules or conftests).
The pytest fixtures built on it live in ``tests/integration/conftest.py`` and
``tests/reliability/conftest.py``; ``tests/unit`` must not start any of them.

One module per server:

* :mod:`tests.support.process`  - shared machinery: own process group, log file,
  free port, readiness polling, last-resort cleanup at exit.
* :mod:`tests.support.openbao`  - :class:`OpenBaoServer` (Vault API, dev mode).
* :mod:`tests.support.moto`     - :class:`MotoServer` (AWS APIs).
* :mod:`tests.support.postgres` - :class:`PostgresCluster` (throwaway cluster).
* :mod:`tests.support.kube`     - :class:`KubeEmulator` (kmock over HTTP).
* :mod:`tests.support.chromium` - :class:`Chromium` (headless, one process per call).
* :mod:`tests.support.authority` - the served authority: in this process
  (``EmbeddedAuthority`` with a movable clock) or in its own process.
* :mod:`tests.support.scripted_authority` - :class:`ScriptedAuthority`, a
  scripted stand-in for the authority's HTTP API (not re-exported here).

Timings measured on the 2-core image (``start()`` until ready; under load
from parallel work): OpenBao 0.14-0.3 s (restart on the same port ~0.15 s,
stop ~0.5 s), moto 0.35-0.6 s, PostgreSQL 0.55-0.75 s with the cluster on
``/dev/shm`` (~1.5 s on disk; restart ~0.05 s), kmock emulator ~0.3 s the
first time in a process (imports), ~0.005 s after. Chromium keeps no
resident process: one ``--dump-dom`` of a tiny page takes 0.8-1.6 s.
"""

from __future__ import annotations

from tests.support.chromium import Chromium, find_chromium
from tests.support.kube import KubeEmulator
from tests.support.moto import MotoServer
from tests.support.openbao import OpenBaoServer, find_bao
from tests.support.postgres import PostgresCluster, find_postgres_bindir, ram_temp_base
from tests.support.process import (
    LOCALHOST,
    REPO_ROOT,
    ServerError,
    WaitTimeoutError,
    free_port,
    http_status,
    log_tail,
    wait_until,
)

__all__ = [
    "LOCALHOST",
    "REPO_ROOT",
    "Chromium",
    "KubeEmulator",
    "MotoServer",
    "OpenBaoServer",
    "PostgresCluster",
    "ServerError",
    "WaitTimeoutError",
    "find_bao",
    "find_chromium",
    "find_postgres_bindir",
    "free_port",
    "http_status",
    "log_tail",
    "ram_temp_base",
    "wait_until",
]
