"""Offline revocation with the IETF Token Status List format."""

from __future__ import annotations

import base64
import zlib
from datetime import timedelta
from typing import Any

import jwt
import pytest

from passgeni_core import (
    STATUS_INVALID,
    STATUS_VALID,
    BadSignature,
    CertificateExpired,
    CertificateRevoked,
    InvalidRequest,
    MalformedToken,
    StatusList,
    check_revocation,
    verify_certificate,
    verify_status_list,
)
from passgeni_core.testing import low_s_token

from .test_verify import DURING, ISSUED, ISSUER, Keys

URI = f"{ISSUER}/status/1"


def _list_token(keys: Keys, lst: StatusList, **overrides: Any) -> str:
    payload: dict[str, Any] = {
        "iss": ISSUER,
        "sub": URI,
        "iat": int(ISSUED.timestamp()),
        "exp": int((ISSUED + timedelta(days=400)).timestamp()),
        "status_list": lst.to_claim(),
    }
    payload.update(overrides)
    return low_s_token(
        jwt.encode(
            payload,
            keys.private,
            algorithm="ES256",
            headers={"kid": keys.kid, "typ": "statuslist+jwt"},
        )
    )


def test_bit_layout_matches_the_draft_example() -> None:
    # draft-ietf-oauth-status-list, 1-bit example: statuses at indexes 0..15
    # [1,0,0,1,1,1,0,1, 1,1,0,0,0,1,0,1] -> bytes 0xB9 0xA3.
    lst = StatusList.empty(16)
    for i, v in enumerate([1, 0, 0, 1, 1, 1, 0, 1, 1, 1, 0, 0, 0, 1, 0, 1]):
        lst.set(i, v)
    assert bytes(lst.data) == b"\xb9\xa3"
    two = StatusList.empty(4, bits=2)
    for i, v in enumerate([1, 2, 0, 3]):
        two.set(i, v)
    assert bytes(two.data) == bytes([0b11001001])
    assert [two.get(i) for i in range(4)] == [1, 2, 0, 3]


def test_round_trip_through_the_claim() -> None:
    lst = StatusList.empty(100_000)
    lst.set(77_777, STATUS_INVALID)
    again = StatusList.from_claim(lst.to_claim())
    assert again.get(77_777) == STATUS_INVALID and again.get(77_776) == STATUS_VALID
    assert len(lst.to_claim()["lst"]) < 200  # mostly zeros compress well


def test_revoke_then_verify_offline() -> None:
    keys = Keys()
    token = keys.sign(keys.claims(status={"status_list": {"idx": 5, "uri": URI}}))
    cert = verify_certificate(token, keys.jwks, issuer=ISSUER, now=DURING)
    lst = StatusList.empty(64, uri=URI)
    fresh = verify_status_list(
        _list_token(keys, lst), keys.jwks, issuer=ISSUER, uri=URI, now=DURING
    )
    check_revocation(cert, fresh)  # valid: no error
    lst.set(5, STATUS_INVALID)
    refreshed = verify_status_list(_list_token(keys, lst), keys.jwks, issuer=ISSUER, now=DURING)
    with pytest.raises(CertificateRevoked):
        check_revocation(cert, refreshed)


def test_forged_stale_and_foreign_lists_are_refused() -> None:
    keys, other = Keys(), Keys()
    lst = StatusList.empty(8)
    with pytest.raises(BadSignature):
        verify_status_list(_list_token(other, lst), keys.jwks, issuer=ISSUER, now=DURING)
    with pytest.raises(CertificateExpired):
        verify_status_list(
            _list_token(keys, lst), keys.jwks, issuer=ISSUER, now=ISSUED + timedelta(days=401)
        )
    with pytest.raises(MalformedToken, match="points at"):
        verify_status_list(
            _list_token(keys, lst), keys.jwks, issuer=ISSUER, uri=URI + "x", now=DURING
        )
    plain_jwt = jwt.encode({"sub": URI}, keys.private, algorithm="ES256", headers={"kid": keys.kid})
    with pytest.raises(MalformedToken, match="typ"):
        verify_status_list(plain_jwt, keys.jwks, issuer=ISSUER, now=DURING)


def test_hostile_lists_are_bounded() -> None:
    bomb = base64.urlsafe_b64encode(zlib.compress(b"\x00" * (1 << 25))).decode().rstrip("=")
    with pytest.raises(MalformedToken, match="larger"):
        StatusList.from_claim({"bits": 1, "lst": bomb})
    with pytest.raises(MalformedToken):
        StatusList.from_claim({"bits": 3, "lst": "AA"})
    with pytest.raises(MalformedToken):
        StatusList.from_claim({"bits": 1, "lst": "!!!"})
    with pytest.raises(InvalidRequest):
        StatusList.empty(8).get(8)
