"""The audit trail for operators and teams (issue #19 item 1), against the served
authority: ``GET /api/events`` in each scope with its filters and paging, the events
of keys, revocations and failed logins, retention that never touches certificates,
the signed and retried anomaly webhook, and ``passgeni authority events|anomalies``."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from passgeni_authority import AuthoritySettings, RateLimits
from passgeni_authority.embedded import EmbeddedAuthority
from tests.support import REPO_ROOT, wait_until
from tests.support.authority import FakeClock, Server, Tenant, plain_session


def _events(t: Tenant, **params: Any) -> dict[str, Any]:
    r = t.get("/api/events", params=params)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def test_a_personal_key_reads_its_own_trail(authority: Server, make_tenant: Any) -> None:
    t = make_tenant()
    other = make_tenant()
    cert = t.certificate()
    other.certificate()
    r = t.post(f"/api/certificates/{cert['cert_id']}/revoke", {"reason": "trail"})
    assert r.status_code == 200
    page = _events(t)
    assert {e["user"] for e in page["items"]} == {t.user}
    kinds = [e["type"] for e in page["items"]]
    assert {"api_key_created", "api_access", "certificate_issued", "certificate_revoked"} <= set(
        kinds
    )
    revoked = next(e for e in page["items"] if e["type"] == "certificate_revoked")
    assert revoked["ip"] == t.ip and revoked["detail"]["cert_id"] == cert["cert_id"]
    # Filters and paging.
    only = _events(t, type="certificate_issued")["items"]
    assert [e["type"] for e in only] == ["certificate_issued"]
    assert _events(t, type="certificate_issued,certificate_revoked", ip=t.ip)["items"]
    first = _events(t, limit=2)
    assert len(first["items"]) == 2 and first["has_more"]
    rest = _events(t, after=first["next_after"])
    # (Reading the trail is an access too: later pages hold those events as well.)
    ids = [e["id"] for e in first["items"] + rest["items"]]
    assert ids[: len(page["items"])] == [e["id"] for e in page["items"]]
    key = t.key.split("_")[1]
    assert all(e["detail"].get("key") == key for e in _events(t, key=key)["items"])
    later = (authority.clock() + timedelta(hours=1)).isoformat()
    assert _events(t, since=later)["items"] == []
    assert t.get("/api/events", params={"type": "nope"}).status_code == 400
    assert t.get("/api/events", params={"since": "yesterday"}).status_code == 400


def test_team_keys_see_the_team_and_operators_see_everyone(
    authority: Server, make_tenant: Any
) -> None:
    team = f"team-{uuid.uuid4().hex[:6]}"
    a = make_tenant(team=team)
    b = make_tenant(team=team)
    outsider = make_tenant()
    a.certificate()
    b.certificate()
    outsider.certificate()
    users = {e["user"] for e in _events(a)["items"]}
    assert users == {a.user, b.user}
    assert {e["user"] for e in _events(b, team=team)["items"]} == {a.user, b.user}
    assert _events(outsider)["items"] and {e["user"] for e in _events(outsider)["items"]} == {
        outsider.user
    }
    # Filtering another tenant's user from outside yields nothing.
    assert _events(outsider, user=a.user)["items"] == []
    created = authority.service.create_api_key(f"op-{uuid.uuid4().hex[:6]}", operator=True)
    operator = Tenant(server=authority, user="op", key=created.key, ip="10.250.0.1")
    seen = {e["user"] for e in _events(operator, team=team, limit=1000)["items"]}
    assert seen == {a.user, b.user}
    # Failed logins with a forged key: recorded against the key's owner, for the
    # operator and for the owner.
    forged = Tenant(
        server=authority, user=a.user, key=f"pgk_{a.key.split('_')[1]}_{'x' * 43}", ip="203.0.113.9"
    )
    assert forged.get("/api/audit").status_code == 401
    failed = _events(operator, type="auth_failed", ip="203.0.113.9")["items"]
    assert len(failed) == 1 and failed[0]["user"] == a.user
    assert failed[0]["detail"]["key"] == a.key.split("_")[1]
    assert any(e["type"] == "auth_failed" for e in _events(a, ip="203.0.113.9")["items"])
    # Key revocation is in the trail.
    authority.service.revoke_api_key(b.key)
    revoked = _events(operator, type="api_key_revoked", user=b.user)["items"]
    assert [e["detail"]["key"] for e in revoked] == [b.key.split("_")[1]]


class _Receiver(BaseHTTPRequestHandler):
    received: list[tuple[dict[str, str], bytes]] = []
    fail_first = 1

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        headers = {k.lower(): v for k, v in self.headers.items()}
        type(self).received.append((headers, body))
        if len(type(self).received) <= type(self).fail_first:
            self.send_response(503)
        else:
            self.send_response(204)
        self.end_headers()

    def log_message(self, *_args: Any) -> None:
        pass


@pytest.fixture
def soc(tmp_path: Path) -> Iterator[tuple[Server, type[_Receiver], bytes]]:
    _Receiver.received = []
    receiver = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    secret = os.urandom(32)
    clock = FakeClock()
    settings = AuthoritySettings(
        state_dir=tmp_path,
        clock=clock,
        fips_strict=False,
        rate_limits=RateLimits.unlimited(),
        anomaly_threshold_24h=2,
        trusted_proxies=("127.0.0.1",),
        event_retention_days=30,
        anomaly_webhook_url=f"http://127.0.0.1:{receiver.server_port}/hook",
        anomaly_webhook_secret=secret,
    )
    try:
        with EmbeddedAuthority(settings=settings, issuer_is_base_url=True) as embedded:
            embedded.service.webhook.backoff = 0.05
            yield Server(embedded=embedded, clock=clock, state_dir=tmp_path), _Receiver, secret
    finally:
        receiver.shutdown()


def test_an_anomaly_reaches_the_webhook_signed_and_retried(
    soc: tuple[Server, type[_Receiver], bytes],
) -> None:
    server, receiver, secret = soc
    created = server.service.create_api_key("bulk", rate_limit=10_000)
    t = Tenant(server=server, user="bulk", key=created.key, ip="10.1.2.3")
    for _ in range(3):
        t.certificate()
    wait_until(lambda: len(receiver.received) >= 2, 30, "the webhook's retry")
    (first_headers, first), (headers, body) = receiver.received[:2]
    assert first == body  # the same delivery, retried
    assert first_headers["x-passgeni-delivery"] == headers["x-passgeni-delivery"]
    flag = json.loads(body)
    assert flag["type"] == "anomaly" and flag["user"] == "bulk" and flag["count_24h"] == 3
    assert flag["issuer"] == server.url and flag["ip"] == "10.1.2.3"
    timestamp, mac = (part.split("=", 1)[1] for part in headers["x-passgeni-signature"].split(","))
    expected = hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(mac, expected)
    assert created.key not in body.decode() and secret.hex() not in body.decode()


def test_retention_prunes_events_and_never_certificates(
    soc: tuple[Server, type[_Receiver], bytes],
) -> None:
    server, _receiver, _secret = soc
    created = server.service.create_api_key("keeper", rate_limit=10_000)
    t = Tenant(server=server, user="keeper", key=created.key, ip="10.1.2.4")
    cert = t.certificate()
    server.clock.advance(31 * 86400)
    fresh = t.certificate()
    done = server.service.run_maintenance()
    assert done["pruned"] > 0
    operator = server.service.create_api_key("ops", operator=True)
    op = Tenant(server=server, user="ops", key=operator.key, ip="10.1.2.5")
    left = _events(op, user="keeper", limit=1000)["items"]
    assert left and all(e["at"] >= fresh["issued_at"][:19] for e in left)
    for issued in (cert, fresh):
        r = plain_session().get(f"{server.url}/api/certificates/{issued['cert_id']}")
        assert r.status_code == 200 and r.json()["token"] == issued["token"]


def test_the_events_and_anomalies_commands(soc: tuple[Server, type[_Receiver], bytes]) -> None:
    server, _receiver, _secret = soc
    created = server.service.create_api_key("cli", rate_limit=10_000)
    t = Tenant(server=server, user="cli", key=created.key, ip="10.1.2.6")
    for _ in range(3):
        t.certificate()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PASSGENI_")}
    base = [sys.executable, "-m", "passgeni_authority"]
    state = ["--state-dir", str(server.state_dir)]

    def run(*args: str) -> str:
        return subprocess.run(
            [*base, *args, *state],
            capture_output=True,
            text=True,
            env=env,
            cwd=REPO_ROOT,
            timeout=120,
            check=True,
        ).stdout

    lines = run("events", "--jsonl", "--user", "cli", "--type", "certificate_issued").splitlines()
    assert len(lines) == 3 and all(
        json.loads(line)["type"] == "certificate_issued" for line in lines
    )
    page = json.loads(run("events", "--json", "--limit", "2"))
    assert len(page["items"]) == 2 and page["has_more"]
    flags = json.loads(run("anomalies", "--json"))["anomalies"]
    assert flags and flags[0]["user"] == "cli" and flags[0]["detail"]["count_24h"] == 3
    assert "certificates in 24 h" in run("anomalies")
    # --follow prints events as they are committed.
    follow = subprocess.Popen(
        [
            *base,
            "events",
            "--jsonl",
            "--follow",
            "--interval",
            "0.2",
            "--type",
            "api_key_created",
            *state,
        ],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd=REPO_ROOT,
    )
    try:
        assert follow.stdout is not None
        seen = [json.loads(follow.stdout.readline())]  # the keys created so far: one at least
        server.service.create_api_key("late-user")
        while seen[-1]["user"] != "late-user":
            seen.append(json.loads(follow.stdout.readline()))
        assert seen[-1]["type"] == "api_key_created"
    finally:
        follow.terminate()
        follow.wait(timeout=10)
