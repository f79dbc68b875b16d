"""Observability over HTTP (issue #19 item 4), against the served authority: /metrics in
the Prometheus text format (parsed with prometheus-client's own parser), liveness and
readiness, and the multiprocess mode of ``serve --workers 2``."""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from passgeni_authority import AuthorityService, AuthoritySettings, RateLimits
from passgeni_authority.embedded import EmbeddedAuthority
from tests.support import LOCALHOST, REPO_ROOT, free_port, http_status, wait_until
from tests.support.authority import Server, plain_session


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def _value(samples: dict[Any, float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def _scrape(url: str) -> dict[Any, float]:
    r = plain_session().get(f"{url}/metrics", timeout=30)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    return _samples(r.text)


def test_metrics_count_what_the_authority_did(authority: Server, make_tenant: Any) -> None:
    before = _scrape(authority.url)
    t = make_tenant()
    cert = t.certificate("soc2")
    other = t.certificate("hipaa")
    # Labelled by the certificates' own standard id.
    soc2, hipaa = cert["compliance_standard"], other["compliance_standard"]
    r = t.post(f"/api/certificates/{cert['cert_id']}/revoke", {"reason": "metrics"})
    assert r.status_code == 200
    assert t.post(f"/api/certificates/{cert['cert_id']}/revoke", {"reason": "again"}).ok
    assert plain_session().get(f"{authority.url}/api/certificates/pg_{'b' * 24}").status_code == 404
    limited = make_tenant(automation=False)
    codes = [limited.get("/api/audit").status_code for _ in range(7)]
    assert codes.count(429) == 2
    after = _scrape(authority.url)

    def grew(name: str, **labels: str) -> float:
        return _value(after, name, **labels) - _value(before, name, **labels)

    assert grew("passgeni_certificates_issued_total", standard=soc2) == 1
    assert grew("passgeni_certificates_issued_total", standard=hipaa) == 1
    assert grew("passgeni_certificates_revoked_total", standard=soc2) == 1  # once, not twice
    assert grew("passgeni_sessions_opened_total") == 2
    assert grew("passgeni_refusals_total", code="not_found") == 1
    assert grew("passgeni_refusals_total", code="rate_limited") == 2
    assert grew("passgeni_rate_limited_total", policy="burst") == 2
    assert (
        grew(
            "passgeni_http_request_duration_seconds_count",
            endpoint="POST /api/generate-certificate",
        )
        == 2
    )
    assert grew("passgeni_http_request_duration_seconds_count", endpoint="GET /api/audit") == 7
    # SQLite: every request-path write goes through group commits.
    assert grew("passgeni_group_commit_units_count") >= 1
    assert ("passgeni_database_errors_total", ()) in after


def test_liveness_and_readiness(authority: Server) -> None:
    http = plain_session()
    assert http.get(f"{authority.url}/healthz").json() == {"status": "ok"}
    r = http.get(f"{authority.url}/readyz")
    assert r.status_code == 200
    assert r.json() == {"status": "ready", "checks": {"database": "ok", "signer": "ok"}}


def test_readiness_fails_when_the_signer_cannot_sign(tmp_path: Path) -> None:
    """A key file gone (a volume not mounted): alive, but not ready, until it is back."""
    settings = AuthoritySettings(state_dir=tmp_path, rate_limits=RateLimits.unlimited())
    AuthorityService(settings).close()  # creates the database and the first key
    [pem] = (tmp_path / "keys").glob("*.pem")
    kept = pem.read_bytes()
    pem.unlink()
    with EmbeddedAuthority(settings=settings) as embedded:
        embedded.service.readiness.TTL = 0.0
        http = plain_session()
        assert http.get(f"{embedded.base_url}/healthz").status_code == 200
        r = http.get(f"{embedded.base_url}/readyz")
        assert r.status_code == 503
        assert r.json()["checks"] == {"database": "ok", "signer": "failed: AuthorityError"}
        pem.write_bytes(kept)
        pem.chmod(0o600)
        assert http.get(f"{embedded.base_url}/readyz").status_code == 200


def test_serve_workers_share_their_metrics(tmp_path: Path) -> None:
    """Multiprocess mode: /metrics on either worker counts the requests of both."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PASSGENI_", "PROMETHEUS_"))}
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "passgeni_authority",
                "serve",
                "--state-dir",
                str(tmp_path),
                "--host",
                LOCALHOST,
                "--port",
                str(port),
                "--workers",
                "2",
                "--log-level",
                "warning",
            ],
            cwd=REPO_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://{LOCALHOST}:{port}"
    try:
        wait_until(
            lambda: http_status(f"{url}/healthz") == 200,
            30,
            "the workers",
            log_path=log,
            process=proc,
        )
        workers = _workers(proc.pid)
        directory = _environ(workers[0])["PROMETHEUS_MULTIPROC_DIR"]

        def both_counted() -> bool:
            files = os.listdir(directory)
            return all(any(f.endswith(f"_{pid}.db") for f in files) for pid in workers)

        # New connections until both workers have answered some (their value
        # files are in the shared directory): the kernel spreads connections.
        sent = 0
        while sent < 24 or not both_counted():
            conn = http.client.HTTPConnection(LOCALHOST, port, timeout=10)
            conn.request("GET", "/healthz")
            assert conn.getresponse().status == 200
            conn.close()
            sent += 1
            assert sent < 2000, "one worker answered every connection"
        for _ in range(4):  # whichever worker answers the scrape, it sees all 24
            samples = _scrape(url)
            assert (
                _value(
                    samples, "passgeni_http_request_duration_seconds_count", endpoint="GET /healthz"
                )
                >= 24
            )
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    assert not Path(directory).exists()  # the supervisor's own directory is removed


def _workers(supervisor: int) -> list[int]:
    found: list[int] = []

    def two() -> bool:
        found[:] = [
            int(p)
            for p in os.listdir("/proc")
            if p.isdigit()
            and _parent(int(p)) == supervisor
            and "spawn_main" in _cmdline(int(p))
            and "resource_tracker" not in _cmdline(int(p))
        ]
        return len(found) == 2

    wait_until(two, 15, "two worker processes")
    return found


def _parent(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return -1


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode().split("=", 1) for item in raw if b"=" in item)
