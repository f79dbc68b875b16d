"""Client input is validated at the edge (issue #21, finding 4, by class): text must be valid
Unicode without control characters, numbers bounded, instants representable. Each answer is a
4xx ``{code, message}`` naming the field; a 5xx only ever means the server really failed."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.authority import Server


def _refused(response: Any, field: str) -> None:
    assert 400 <= response.status_code < 500, (response.status_code, response.text)
    body = response.json()
    assert set(body) == {"code", "message"} and field in body["message"], body


@pytest.mark.parametrize(
    "reason",
    ["\ud800 lone surrogate", "nul \x00 byte", "escape \x1b[2J", "", " " * 3, "x" * 501],
    ids=["surrogate", "nul", "escape", "empty", "blank", "long"],
)
def test_a_revocation_reason_is_checked(authority: Server, make_tenant: Any, reason: str) -> None:
    t = make_tenant()
    cert = t.certificate()
    r = t.post(f"/api/certificates/{cert['cert_id']}/revoke", {"reason": reason})
    _refused(r, "reason")
    assert t.get(f"/api/certificates/{cert['cert_id']}").json()["status"] == "valid"


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("page=9223372036854775807", "page"),
        ("page_size=100000", "page_size"),
        ("since=0001-01-01T00:00:00%2B14:00", "since"),
        ("until=9999-12-31T23:59:59-14:00", "until"),
        ("since=not-a-date", "since"),
        ("standard=soc2%00", "standard"),
        ("status=%ED%A0%80", "status"),
    ],
)
def test_audit_parameters_are_checked(
    authority: Server, make_tenant: Any, query: str, field: str
) -> None:
    t = make_tenant()
    _refused(t.get(f"/api/audit?{query}"), field)
