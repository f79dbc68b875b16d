"""Real-server fixtures (no mocks) for the integration and reliability tiers.

Built on the harness in ``tests/support``; imported by ``tests/integration/conftest.py``
and ``tests/reliability/conftest.py`` (never by ``tests/unit``, whose guard refuses servers).
Each is session-scoped and started lazily, only when a test requests it; it
runs on a free port of 127.0.0.1 and is stopped (process group killed, temp
dir removed) at the end of the session:

* ``openbao``        -> :class:`tests.support.OpenBaoServer` (``.url``, ``.token``; dev mode, KV v2
                        at ``secret/``)
* ``moto_server``    -> :class:`tests.support.MotoServer` (``.url``, ``.boto3_client(service)``)
* ``postgres``       -> :class:`tests.support.PostgresCluster` (``.port``, ``.url(db)``,
                        ``.create_database(name)``)
* ``kube_emulator``  -> :class:`tests.support.KubeEmulator` (``.url``, ``.api_client()``)
* ``chromium``       -> :class:`tests.support.Chromium` (``.dump_dom(url)``, ``.screenshot(url, path)``, ``.capture(url)``)

The servers are shared by the whole session: use unique names (paths, secret
names, databases, namespaces) per test. Tests that stop, restart or pause a
server (fault injection) must start their own instance from ``tests.support``
(e.g. ``with OpenBaoServer() as bao: ...``) instead of disturbing these.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support import Chromium, KubeEmulator, MotoServer, OpenBaoServer, PostgresCluster

__all__ = ["chromium", "kube_emulator", "moto_server", "openbao", "postgres"]


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
