"""The client's typed answers are decoded with the wire Structs: what a malformed
answer becomes, what a lax one is still read as, and the request bodies sent."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest

from passgeni_core import AuthorityError, InvalidRequest
from passgeni_core.client import (
    AuditPage,
    CertificateRecord,
    CertificateRequest,
    GenerationSession,
    IssueBody,
    IssuedCertificate,
    TargetBody,
)
from passgeni_core.model import Target

ISSUED: dict[str, Any] = {
    "cert_id": "pg_x",
    "cert_url": "https://a.example/cert/pg_x",
    "token": "h.p.s",
    "compliance_standard": "soc2",
    "standards_met": ["nist-800-63b", "soc2"],
    "entropy_bits": 104.59,
    "issued_at": "2026-11-22T03:00:00Z",
    "expires_at": "2027-11-22T03:00:00Z",
}
RECORD: dict[str, Any] = {
    **ISSUED,
    "status": "revoked",
    "revoked_at": "2026-11-23T00:00:00Z",
    "revocation_reason": "leaked",
    "parameters": {"length": 20},
    "entropy_source": {"api": "os.urandom"},
    "provenance": {
        "observed": {
            "parameters_revalidated": True,
            "nonce_source": {"api": "secrets", "kernel_source": "getrandom(2)", "fips_mode": False},
        },
        "declared": ["entropy_source", "target", "label"],
        "fips_rule": "strict-v1",
    },
    "label": "db",
    "target": {"system": "vault", "path": "secret/app#password", "version": "3"},
    "kid": "k1",
    "log": {"index": 7, "revocation_index": 9},
}


def test_answers_round_trip_through_the_wire_structs() -> None:
    issued = IssuedCertificate.from_dict(ISSUED)
    assert issued.issued_at == datetime(2026, 11, 22, 3, tzinfo=UTC)
    assert issued.standards_met == ("nist-800-63b", "soc2")
    assert issued.to_dict() == ISSUED
    record = CertificateRecord.from_dict(RECORD)
    assert record.revoked and record.reason == "leaked"
    assert record.target == Target(system="vault", path="secret/app#password", version="3")
    assert record.to_dict() == RECORD
    page = AuditPage.from_dict(
        {
            "items": [RECORD],
            "page": 1,
            "page_size": 1,
            "total": 2,
            "anomalies": [{"user": "u", "detected_at": "2026-11-22T03:00:00Z", "count_24h": 51}],
        }
    )
    assert page.has_next and page.items == (record,) and page.anomalies[0].count_24h == 51


def test_a_lax_answer_is_still_read() -> None:
    """Unknown fields are ignored (a newer authority), a naive time means UTC,
    absent optional fields take their defaults."""
    record = CertificateRecord.from_dict(
        {
            **{k: v for k, v in RECORD.items() if k not in ("kid", "label", "target")},
            "issued_at": "2026-11-22T03:00:00",
            "something_new": {"x": 1},
        }
    )
    assert record.issued_at.tzinfo is UTC and record.kid is None and record.target is None
    session = GenerationSession.from_dict(
        {
            "generation_session_id": "s" * 40,
            "expires_in": 60,
            "compliance_standard": "soc2",
            "standards_met": [],
            "entropy_bits": 80,
        },
        received_at=datetime(2026, 1, 1, tzinfo=UTC),
    )
    assert session.expires_at == datetime(2026, 1, 1, 0, 1, tzinfo=UTC)
    assert "s" * 40 not in repr(session)


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"cert_url": None}, "cert_url"),
        ({"token": ""}, "token"),
        ({"entropy_bits": "104"}, "entropy_bits"),
        ({"entropy_bits": True}, "entropy_bits"),
        ({"entropy_bits": float("nan")}, "entropy_bits"),
        ({"standards_met": ["soc2", 3]}, "standards_met"),
        ({"issued_at": "yesterday"}, "issued_at"),
        ({"status": "maybe"}, "status"),
        ({"target": {"system": "vault"}}, "path"),
        ({"target": {"system": "vault", "path": ""}}, "target"),
    ],
)
def test_a_malformed_answer_is_an_authority_error_naming_the_field(
    change: dict[str, Any], named: str
) -> None:
    with pytest.raises(AuthorityError, match=named) as info:
        CertificateRecord.from_dict({**RECORD, **change})
    assert "unexpected response from the authority" in str(info.value)
    assert not isinstance(info.value, msgspec.ValidationError)
    assert info.value.__cause__ is None  # no msgspec traceback chained behind it


def test_request_bodies_leave_out_what_is_not_given() -> None:
    assert CertificateRequest(session_id="s").to_body() == {"generation_session_id": "s"}
    full = CertificateRequest(
        session_id="s",
        credential_commitment="A" * 43,
        target={"system": "vault", "path": "secret/x#pw"},
        label="db",
    ).to_body()
    assert full == {
        "generation_session_id": "s",
        "credential_commitment": "A" * 43,
        "target": {"system": "vault", "path": "secret/x#pw"},
        "label": "db",
    }
    with pytest.raises(InvalidRequest):
        CertificateRequest(session_id="s", target={"system": "vault"}).to_body()
    # Decoding a request is strict, as the authority is: no unknown field.
    with pytest.raises(msgspec.ValidationError, match="password"):
        msgspec.convert({"generation_session_id": "s", "password": "x"}, IssueBody)
    assert msgspec.to_builtins(
        msgspec.convert({"system": "k8s", "path": "ns/s#k"}, TargetBody)
    ) == {
        "system": "k8s",
        "path": "ns/s#k",
    }
