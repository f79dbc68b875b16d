"""AuthorityClient error mapping against a scripted HTTP server: error bodies to the core
exceptions with their stable codes, one-line messages that never echo the API key,
malformed answers as authority errors."""

from __future__ import annotations

import pytest

from passgeni_core import (
    AuthorityClient,
    AuthorityError,
    InvalidRequest,
    NotFound,
    PassgeniError,
    PermissionDenied,
    PresetNotMet,
    RateLimited,
    SessionAlreadyUsed,
    SessionExpired,
    SessionInvalid,
    Unauthenticated,
)
from tests.support.scripted_authority import (
    API_KEY,
    Reply,
    ScriptedAuthority,
    make_client,
)


@pytest.mark.parametrize(
    ("status", "code", "exc"),
    [
        (410, "session_expired", SessionExpired),
        (409, "session_already_used", SessionAlreadyUsed),
        (400, "session_invalid", SessionInvalid),
        (401, "unauthenticated", Unauthenticated),
        (403, "permission_denied", PermissionDenied),
        (404, "not_found", NotFound),
        (422, "preset_not_met", PresetNotMet),
        (400, "invalid_request", InvalidRequest),
    ],
)
def test_error_bodies_map_to_core_exceptions(
    fake: ScriptedAuthority, status: int, code: str, exc: type[Exception]
) -> None:
    fake.queue("POST", "/api/generate-certificate", Reply(status, {"code": code, "message": "m!"}))
    client, _ = make_client(fake)
    with pytest.raises(exc) as info:
        client.issue_certificate("sess-1")
    err = info.value
    assert type(err) is exc and isinstance(err, PassgeniError)
    assert err.code == code and err.message == "m!"


def test_rate_limited_body_carries_retry_after(fake: ScriptedAuthority) -> None:
    body = {"code": "rate_limited", "message": "burst"}
    fake.queue("GET", "/api/audit", *[Reply(429, body, {"Retry-After": "7"})] * 2)
    client, _ = make_client(fake, retries=1, max_retry_after=5)
    with pytest.raises(RateLimited) as info:
        client.audit()
    assert info.value.retry_after == 7.0


def test_unknown_code_keeps_the_code_and_plain_errors_map_by_status(
    fake: ScriptedAuthority,
) -> None:
    fake.queue(
        "GET", "/api/audit", Reply(418, {"code": "teapot_mode", "message": "short and stout"})
    )
    fake.queue("GET", "/api/audit", Reply(401, raw=b"<h1>Unauthorized</h1>"))
    fake.queue("GET", "/api/audit", Reply(404, raw=b"nope"))
    client, _ = make_client(fake)
    with pytest.raises(AuthorityError) as info:
        client.audit()
    assert info.value.code == "teapot_mode" and info.value.message == "short and stout"
    with pytest.raises(Unauthenticated, match="HTTP 401"):
        client.audit()
    with pytest.raises(NotFound, match="HTTP 404"):
        client.audit()


def test_server_messages_never_echo_the_api_key(fake: ScriptedAuthority) -> None:
    body = {"code": "unauthenticated", "message": f"key {API_KEY} is revoked"}
    fake.queue("GET", "/api/audit", Reply(401, body))
    client, _ = make_client(fake)
    with pytest.raises(Unauthenticated) as info:
        client.audit()
    assert API_KEY not in str(info.value) and "***" in str(info.value)


def test_missing_api_key_fails_before_sending(fake: ScriptedAuthority) -> None:
    client = AuthorityClient(fake.url)
    with pytest.raises(Unauthenticated, match="PASSGENI_API_KEY"):
        client.audit()
    assert fake.seen == []
    assert client.health()["status"] == "ok"  # public endpoints need no key


def test_malformed_success_bodies_are_authority_errors(fake: ScriptedAuthority) -> None:
    fake.queue("POST", "/api/generate-certificate", Reply(201, {"cert_id": "x"}))
    fake.queue("GET", "/healthz", Reply(200, raw=b"ok"))
    client, _ = make_client(fake)
    with pytest.raises(AuthorityError, match="cert_url"):
        client.issue_certificate("s")
    with pytest.raises(AuthorityError, match="non-JSON"):
        client.health()
