"""Shared pytest fixtures for the PassGeni test suite.

Real-server fixtures (no mocks), built on the classes in ``tests/_servers.py``.
Each is session-scoped and started lazily, only when a test requests it; it
runs on a free port of 127.0.0.1 and is stopped (process group killed, temp
dir removed) at the end of the session:

* ``openbao``        -> :class:`_servers.OpenBaoServer` (``.url``, ``.token``; dev mode, KV v2
                        at ``secret/``)
* ``moto_server``    -> :class:`_servers.MotoServer` (``.url``, ``.boto3_client(service)``)
* ``postgres``       -> :class:`_servers.PostgresCluster` (``.port``, ``.url(db)``,
                        ``.create_database(name)``)
* ``kube_emulator``  -> :class:`_servers.KubeEmulator` (``.url``, ``.api_client()``)
* ``chromium``       -> :class:`_servers.Chromium` (``.dump_dom(url)``, ``.screenshot(url, path)``)

The servers are shared by the whole session: use unique names (paths, secret
names, databases, namespaces) per test. Tests that stop, restart or pause a
server (fault injection) must start their own instance from ``_servers``
(e.g. ``with OpenBaoServer() as bao: ...``) instead of disturbing these.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

from tests._servers import Chromium, KubeEmulator, MotoServer, OpenBaoServer, PostgresCluster

# Property tests assert correctness, never speed: a loaded 2-core CI machine must
# not fail them on hypothesis's per-example deadline.
settings.register_profile("passgeni", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("passgeni")


@pytest.fixture(scope="session")
def openbao() -> Iterator[OpenBaoServer]:
    """A real OpenBao dev server (Vault API)."""
    with OpenBaoServer() as server:
        yield server


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    """A real ``moto_server`` (AWS APIs, region us-east-1, dummy credentials)."""
    with MotoServer() as server:
        yield server


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresCluster]:
    """A throwaway PostgreSQL 15 cluster (trust auth, user ``postgres``)."""
    with PostgresCluster() as cluster:
        yield cluster


@pytest.fixture(scope="session")
def kube_emulator() -> Iterator[KubeEmulator]:
    """The kmock Kubernetes API emulator over HTTP (v1 secrets, namespaces, events)."""
    with KubeEmulator() as emulator:
        yield emulator


@pytest.fixture(scope="session")
def chromium() -> Iterator[Chromium]:
    """Headless Chromium (``/usr/bin/chromium``), one browser process per call."""
    with Chromium() as browser:
        yield browser
