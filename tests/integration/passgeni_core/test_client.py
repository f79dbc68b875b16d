"""AuthorityClient results and requests against a real (stdlib) HTTP server.

The server (``tests.support.scripted_authority``) is a small scripted
``http.server`` used only for what a real authority cannot be made to do on
demand; retries are in ``test_client_retries.py``, error mapping in
``test_client_errors.py``. The end-to-end contract against the real
``passgeni_authority`` lives in ``test_provision.py`` and ``test_cli_remote.py``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
import requests

from passgeni_core import (
    AuthorityClient,
    AuthorityError,
    CertificateRequest,
    GenerationParameters,
    InvalidParameters,
    InvalidRequest,
    IssuedCertificate,
    NotFound,
    SessionAlreadyUsed,
    Target,
)
from tests.support.scripted_authority import (
    API_KEY,
    Reply,
    ScriptedAuthority,
    Seen,
    make_client,
)
from tests.support.seeds import commitment


def test_a_caller_session_with_a_mounted_adapter_is_used_and_left_clean(
    fake: ScriptedAuthority,
) -> None:
    sent: list[str] = []

    class Counting(requests.adapters.HTTPAdapter):
        def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
            sent.append(str(request.url))
            return super().send(request, **kwargs)

    session = requests.Session()
    session.mount("http://", Counting())
    with AuthorityClient(fake.url, API_KEY, session=session) as client:
        client.audit()
    assert sent == [f"{fake.url}/api/audit?page=1&page_size=50"]
    assert "Authorization" not in session.headers
    session.get(f"{fake.url}/healthz").raise_for_status()  # not closed by the client


def test_typed_results_and_aware_datetimes(fake: ScriptedAuthority) -> None:
    client, _ = make_client(fake)
    params = GenerationParameters.for_preset("soc2")
    session = client.start_generation("soc2", params, seed_commitment=commitment())
    assert session.compliance_standard == "soc2" and session.expires_in == 60
    assert session.session_id not in repr(session)
    assert session.expires_at.tzinfo is not None
    issued = client.issue_certificate(
        session,
        target={"system": "vault", "path": "secret/a#pw"},
        label="db",
    )
    assert isinstance(issued, IssuedCertificate) and issued.cert_id.startswith("pg_")
    assert issued.issued_at.tzinfo is not None and issued.expires_at > issued.issued_at
    record = client.get_certificate(issued.cert_id)
    assert record.status == "valid" and record.target == Target(system="vault", path="secret/a#pw")
    assert record.revoked_at is None and record.reason is None
    revoked = client.revoke(issued.cert_id, "rotated")
    assert revoked.revoked and revoked.reason == "rotated" and revoked.revoked_at is not None
    assert revoked.revoked_at.tzinfo is not None
    page = client.audit(status="revoked", since=datetime(2026, 1, 1, tzinfo=UTC), page_size=10)
    assert page.total == 1 and page.items[0].cert_id == issued.cert_id
    query = fake.requests_to("/api/audit")[-1].query
    assert query == {
        "status": ["revoked"],
        "since": ["2026-01-01T00:00:00Z"],
        "page": ["1"],
        "page_size": ["10"],
    }
    assert list(client.iter_audit()) == list(page.items)
    assert client.jwks().kids == [fake.kid]


def test_local_validation_happens_before_any_request(fake: ScriptedAuthority) -> None:
    client, _ = make_client(fake)
    with pytest.raises(InvalidParameters):
        client.start_generation("soc2", {"length": 20, "password": "hunter2"})
    with pytest.raises(InvalidRequest):
        client.revoke("pg_1", "")
    # Outside the status Literal on purpose (typed Any, as an untyped caller's
    # value is): the client must refuse it before any request.
    untyped_status: Any = "lost"
    with pytest.raises(InvalidRequest):
        client.audit(status=untyped_status)
    with pytest.raises(InvalidRequest):
        client.get_certificate("")
    assert fake.seen == []


def test_certificate_ids_cannot_escape_the_path(fake: ScriptedAuthority) -> None:
    client, _ = make_client(fake)
    with pytest.raises(NotFound):
        client.get_certificate("../../healthz?x")
    assert fake.seen[-1].path == "/api/certificates/..%2F..%2Fhealthz%3Fx"


def test_batch_issuance_keeps_order_and_item_errors(
    fake: ScriptedAuthority, monkeypatch: pytest.MonkeyPatch
) -> None:
    client, _ = make_client(fake)
    params = GenerationParameters.for_preset("soc2")
    sids = [
        client.start_generation("soc2", params, seed_commitment=commitment()).session_id
        for _ in range(3)
    ]

    def batch_route(seen: Seen) -> Reply:
        items = json.loads(seen.body)["items"]
        out: list[dict[str, Any]] = []
        for item in items:
            reply = fake._certificate(item)
            out.append(reply.body if reply.status == 201 else {"error": reply.body})
        return Reply(201, {"certificates": out})

    original = fake.route
    monkeypatch.setattr(
        fake,
        "route",
        lambda seen: (
            batch_route(seen) if seen.path == "/api/generate-certificates" else original(seen)
        ),
    )
    monkeypatch.setattr(client, "max_batch", 2)
    results = client.issue_certificates(
        [CertificateRequest(session_id=s) for s in [sids[0], "bogus", sids[1], sids[2]]]
    )
    assert [type(r) for r in results] == [
        IssuedCertificate,
        SessionAlreadyUsed,
        IssuedCertificate,
        IssuedCertificate,
    ]
    assert len(fake.requests_to("/api/generate-certificates")) == 2  # split at MAX_BATCH


def test_only_api_calls_carry_the_key(fake: ScriptedAuthority) -> None:
    client, _ = make_client(fake)
    client.health()
    client.jwks()
    client.audit()
    by_path = {s.path: s.headers.get("Authorization") for s in fake.seen}
    assert by_path == {
        "/healthz": None,
        "/.well-known/jwks.json": None,
        "/api/audit": f"Bearer {API_KEY}",
    }


def test_a_session_that_disagrees_is_not_redeemed(
    fake: ScriptedAuthority, monkeypatch: pytest.MonkeyPatch
) -> None:
    from passgeni_core import provision

    original = fake._generate

    def lying(body: dict[str, Any]) -> Reply:
        reply = original(body)
        reply.body["entropy_bits"] += 5
        return reply

    monkeypatch.setattr(fake, "_generate", lying)
    with pytest.raises(AuthorityError, match="not certified"):
        provision(AuthorityClient(fake.url, API_KEY), "soc2")
    assert fake.requests_to("/api/generate-certificate") == []
