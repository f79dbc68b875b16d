"""AuthorityClient retries, back-off, timeouts and redirects against a scripted HTTP server.

What is retried (503, 429 with ``Retry-After``, a read timeout or a dropped
connection on an idempotent call) and what is not (a single-use session, a
redirect): the server (``tests.support.scripted_authority``) answers on cue and
records every request.
"""

from __future__ import annotations

import time

import pytest

from passgeni_core import (
    AuthorityClient,
    AuthorityError,
    AuthorityUnavailable,
    GenerationParameters,
    RateLimited,
)
from tests.support import free_port
from tests.support.scripted_authority import (
    API_KEY,
    Reply,
    ScriptedAuthority,
    Sleeps,
    make_client,
)
from tests.support.seeds import commitment


def test_503_is_retried_with_exponential_backoff(fake: ScriptedAuthority) -> None:
    fake.queue("GET", "/healthz", Reply(503), Reply(503))
    client, sleeps = make_client(fake, retries=3, backoff=0.1)
    assert client.health() == {"status": "ok"}
    assert len(fake.requests_to("/healthz")) == 3
    assert len(sleeps) == 2
    # Jittered between 50% and 100% of backoff * 2**attempt.
    assert 0.05 <= sleeps[0] <= 0.1 and 0.1 <= sleeps[1] <= 0.2


def test_503_retries_really_wait(fake: ScriptedAuthority) -> None:
    fake.queue("GET", "/healthz", Reply(503), Reply(503))
    client = AuthorityClient(fake.url, retries=2, backoff=0.1)
    start = time.monotonic()
    assert client.health()["status"] == "ok"
    assert time.monotonic() - start >= 0.05 + 0.1


def test_503_after_all_retries_is_authority_unavailable(fake: ScriptedAuthority) -> None:
    fake.queue("GET", "/healthz", *[Reply(503, raw=b"<html>busy</html>")] * 3)
    client, _ = make_client(fake, retries=2, backoff=0)
    with pytest.raises(AuthorityUnavailable) as info:
        client.health()
    assert len(fake.requests_to("/healthz")) == 3
    assert fake.url in info.value.message and "3 attempt" in info.value.message
    assert "\n" not in str(info.value)


def test_503_with_a_code_maps_to_that_code(fake: ScriptedAuthority) -> None:
    body = {"code": "authority_unavailable", "message": "database is down"}
    fake.queue("GET", "/healthz", *[Reply(503, body)] * 2)
    client, _ = make_client(fake, retries=1, backoff=0)
    with pytest.raises(AuthorityUnavailable, match="database is down"):
        client.health()


def test_429_honours_retry_after(fake: ScriptedAuthority) -> None:
    limited = {"code": "rate_limited", "message": "slow down"}
    fake.queue("GET", "/healthz", Reply(429, limited, {"Retry-After": "2"}))
    client, sleeps = make_client(fake)
    assert client.health()["status"] == "ok"
    assert sleeps == [2.0]


def test_429_retry_after_as_http_date(fake: ScriptedAuthority) -> None:
    import email.utils

    when = email.utils.formatdate(time.time() + 3, usegmt=True)
    fake.queue("GET", "/healthz", Reply(429, None, {"Retry-After": when}))
    client, sleeps = make_client(fake)
    client.health()
    assert len(sleeps) == 1 and 1.0 <= sleeps[0] <= 3.5


def test_429_with_a_long_retry_after_raises_at_once(fake: ScriptedAuthority) -> None:
    limited = {"code": "rate_limited", "message": "10 certificates per hour"}
    fake.queue("POST", "/api/generate", Reply(429, limited, {"Retry-After": "3600"}))
    client, sleeps = make_client(fake, max_retry_after=30)
    with pytest.raises(RateLimited) as info:
        client.start_generation(
            "soc2", GenerationParameters.for_preset("soc2"), seed_commitment=commitment()
        )
    assert info.value.retry_after == 3600.0
    assert info.value.message == "10 certificates per hour"
    assert sleeps == [] and len(fake.requests_to("/api/generate")) == 1


def test_429_after_all_retries_is_rate_limited(fake: ScriptedAuthority) -> None:
    fake.queue("GET", "/healthz", *[Reply(429, None, {"Retry-After": "1"})] * 3)
    client, sleeps = make_client(fake, retries=2)
    with pytest.raises(RateLimited) as info:
        client.health()
    assert info.value.retry_after == 1.0 and sleeps == [1.0, 1.0]


def test_connection_refused_is_authority_unavailable_naming_the_url() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    sleeps = Sleeps()
    client = AuthorityClient(url, API_KEY, retries=2, backoff=0.01, sleep=sleeps)
    with pytest.raises(AuthorityUnavailable) as info:
        client.jwks()
    message = str(info.value)
    assert url in message and "3 attempt" in message
    assert API_KEY not in message and API_KEY not in repr(info.value)
    assert "\n" not in message and len(sleeps) == 2
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_read_timeout_is_retried_for_idempotent_calls_only(fake: ScriptedAuthority) -> None:
    fake.queue("GET", "/healthz", Reply(200, {"status": "ok"}, delay=1.0))
    client, _ = make_client(fake, timeout=0.3, retries=1, backoff=0)
    assert client.health()["status"] == "ok"
    assert len(fake.requests_to("/healthz")) == 2

    params = GenerationParameters.for_preset("soc2")
    session = client.start_generation("soc2", params, seed_commitment=commitment())
    fake.queue("POST", "/api/generate-certificate", Reply(201, {}, delay=1.0))
    issued = client.issue_certificate(session.session_id, label="db")
    # A redemption is idempotent (the authority answers an identical retry with the
    # certificate it made): re-sent once, byte for byte, and answered.
    sent = fake.requests_to("/api/generate-certificate")
    assert len(sent) == 2 and sent[0].body == sent[1].body
    assert issued.cert_id.startswith("pg_fake")


def test_redirects_are_not_followed(fake: ScriptedAuthority) -> None:
    with ScriptedAuthority() as elsewhere:
        fake.queue(
            "GET", "/api/audit", Reply(302, None, {"Location": f"{elsewhere.url}/api/audit"})
        )
        client, _ = make_client(fake)
        with pytest.raises(AuthorityError, match="redirect"):
            client.audit()
        assert elsewhere.seen == [] and API_KEY.encode() not in elsewhere.wire


def test_a_cut_off_certificate_request_is_retried_and_answered(fake: ScriptedAuthority) -> None:
    params = GenerationParameters.for_preset("soc2")
    client, _ = make_client(fake, retries=2, backoff=0)
    session = client.start_generation("soc2", params, seed_commitment=commitment())
    fake.queue("POST", "/api/generate-certificate", Reply(drop=True))
    issued = client.issue_certificate(session.session_id, label="db")
    sent = fake.requests_to("/api/generate-certificate")
    assert len(sent) == 2 and sent[0].body == sent[1].body
    assert fake.records[issued.cert_id]["label"] == "db"
