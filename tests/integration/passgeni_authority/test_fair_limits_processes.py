"""Fair limits are shared by every process of one authority (issue #19 item 2): two
``passgeni_authority serve`` processes on one database (SQLite, then PostgreSQL), one
office behind one IP address."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.support import PostgresCluster, free_port
from tests.support.authority import plain_session
from tests.support.authority_processes import ROOT, AuthorityProcess
from tests.support.seeds import with_commitments


@contextlib.contextmanager
def _two_processes(workdir: Path, env: dict[str, str]) -> Iterator[list[AuthorityProcess]]:
    state_dir = workdir / "state"
    state_dir.mkdir(parents=True, exist_ok=True)
    ports = [free_port(), free_port()]
    procs = [
        AuthorityProcess(
            port=port,
            state_dir=state_dir,
            public_url=f"http://127.0.0.1:{ports[0]}",
            env=env,
            log=workdir / f"authority-{port}.log",
        )
        for port in ports
    ]
    try:
        for proc in procs:
            proc.start()
        yield procs
    finally:
        for proc in procs:
            proc.stop()


def _key(state_dir: Path, env: dict[str, str], user: str, *flags: str) -> str:
    created = subprocess.run(
        [
            sys.executable,
            "-m",
            "passgeni_authority",
            "create-key",
            "--state-dir",
            str(state_dir),
            "--user",
            user,
            "--json",
            *flags,
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=120,
        check=True,
    )
    key: str = json.loads(created.stdout)["api_key"]
    return key


def _client(key: str) -> requests.Session:
    http = plain_session()
    http.headers["Authorization"] = f"Bearer {key}"
    return http


def _batch(http: requests.Session, url: str, count: int) -> requests.Response:
    body = with_commitments("/api/generate-batch", {"compliance_standard": "soc2", "count": count})
    return http.post(f"{url}/api/generate-batch", json=body, timeout=30)


def _left(response: requests.Response, policy: str) -> int:
    for item in response.headers["RateLimit"].split(","):
        name, _, params = item.strip().partition(";")
        if name == f'"{policy}"':
            return int(dict(p.split("=") for p in params.split(";"))["r"])
    raise AssertionError(f"no {policy} in {response.headers['RateLimit']!r}")


@pytest.fixture(params=["sqlite", "postgres"])
def deployment(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[list[str], Path, dict[str, str]]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PASSGENI_")}
    if request.param == "postgres":
        postgres: PostgresCluster = request.getfixturevalue("postgres")
        env["PASSGENI_DATABASE_URL"] = postgres.create_database(f"fair_{uuid.uuid4().hex[:10]}")
    with _two_processes(tmp_path, env) as procs:
        yield [p.url for p in procs], tmp_path / "state", env


def test_the_per_ip_window_and_the_burst_are_shared_and_refusals_cost_nothing(
    deployment: tuple[list[str], Path, dict[str, str]],
) -> None:
    (a, b), state_dir, env = deployment
    alice = _client(_key(state_dir, env, "fair-alice"))
    bob = _client(_key(state_dir, env, "fair-bob"))  # same office, same address
    # A batch over the whole hourly budget is refused on either process, spending nothing.
    assert _batch(alice, b, 11).status_code == 400
    first = _batch(alice, a, 6)
    assert first.status_code == 200, first.text
    assert _left(first, "generation-ip") == 4 and _left(first, "burst") == 4
    # The other process sees the same per-IP window: 4 left, for any key behind the IP.
    refused = _batch(bob, b, 5)
    assert refused.status_code == 429 and refused.headers["Retry-After"]
    second = _batch(bob, b, 4)
    assert second.status_code == 200, second.text
    assert _left(second, "generation-ip") == 0
    assert _batch(alice, a, 1).status_code == 429
    # Alice's burst is shared too: 4 left after her one admitted request, whatever
    # process answers (the 429s above charged nothing).
    codes = [alice.get(f"{url}/api/audit", timeout=30).status_code for url in (b, a, b, a, b, a)]
    assert codes.count(200) in (4, 5) and codes[-1] == 429, codes


def _certificate(http: requests.Session, url: str) -> requests.Response:
    body = with_commitments("/api/generate", {"compliance_standard": "soc2"})
    sid = http.post(f"{url}/api/generate", json=body, timeout=30).json()["generation_session_id"]
    return http.post(
        f"{url}/api/generate-certificate", json={"generation_session_id": sid}, timeout=30
    )


def test_the_monthly_quota_is_shared(deployment: tuple[list[str], Path, dict[str, str]]) -> None:
    (a, b), state_dir, env = deployment
    http = _client(
        _key(state_dir, env, "fair-quota", "--plan", "foundation", "--rate-limit", "1000")
    )
    assert [_certificate(http, url).status_code for url in (a, b, a)] == [201] * 3
    for url in (b, a):
        r = _certificate(http, url)
        assert (r.status_code, r.json()["code"]) == (402, "quota_exceeded")
    # Either process reports the same use and the same trail.
    for url in (a, b):
        usage = http.get(f"{url}/api/audit", timeout=30).json()["usage"]
        assert (usage["plan"], usage["used"], usage["remaining"]) == ("foundation", 3, 0)
        events = http.get(
            f"{url}/api/events", params={"type": "certificate_issued"}, timeout=30
        ).json()
        assert len(events["items"]) == 3
