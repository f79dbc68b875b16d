"""The certificate half of the one judge (``passgeni_core.assess_certificate``), with no server.

The checks it shares with :func:`passgeni_core.assess` (signature, issuer, key refresh) are
tested thoroughly in ``test_assessment.py``; this file tests what a certificate given by
token or id adds: the record must hold that very token, the id must be the token's ``jti``,
and the offline form needs the keys and issuer it trusts.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from passgeni_core import InvalidRequest, NotFound, assess_certificate
from passgeni_core.client import AuthorityClient
from passgeni_core.crypto import JWKS, Credential, StatusList
from passgeni_core.testing import FakeAuthority


def _issue(authority: FakeAuthority, **options: Any) -> str:
    return authority.issue(Credential.create("correct horse battery staple"), **options).cert_id


def test_by_id_and_by_token_a_good_certificate_is_valid(
    authority: FakeAuthority, client: AuthorityClient
) -> None:
    cert_id = _issue(authority)
    token = authority.certificates[cert_id].token
    for verdict in (
        assess_certificate(client, cert_id=cert_id),
        assess_certificate(client, token=token),
    ):
        assert verdict.status == "valid" and verdict.reasons == ()
        assert verdict.cert_id == cert_id and verdict.uri == authority.cert_url(cert_id)
        assert verdict.record is not None and verdict.certificate is not None
        assert verdict.standard == "soc2"


def test_a_token_offline_is_judged_without_the_record(
    authority: FakeAuthority, client: AuthorityClient
) -> None:
    cert_id = _issue(authority)
    token = authority.certificates[cert_id].token
    authority.revoke(cert_id, "compromised")
    # online=False: the signature and expiry only; the revocation is not seen.
    unseen = assess_certificate(client, token=token, online=False)
    assert unseen.status == "valid" and unseen.record is None and unseen.uri == cert_id
    seen = assess_certificate(client, token=token)
    assert seen.status == "revoked" and seen.revocation_reason == "compromised"


def test_fully_offline_needs_the_keys_and_the_issuer(authority: FakeAuthority) -> None:
    cert_id = _issue(authority)
    token = authority.certificates[cert_id].token
    jwks = JWKS.from_dict(authority.jwks_document())
    verdict = assess_certificate(None, token=token, jwks=jwks, issuer=authority.issuer)
    assert verdict.status == "valid" and authority.jwks_requests == 0
    wrong = assess_certificate(None, token=token, jwks=jwks, issuer="https://other.test")
    assert wrong.status == "invalid" and wrong.reasons == ("wrong_issuer",)
    with pytest.raises(InvalidRequest, match="JWKS and the issuer"):
        assess_certificate(None, token=token)
    with pytest.raises(InvalidRequest, match="token or a certificate id"):
        assess_certificate(None)
    with pytest.raises(InvalidRequest, match="an id and an authority"):
        assess_certificate(None, cert_id=cert_id)


def test_offline_revocation_comes_from_a_status_list(authority: FakeAuthority) -> None:
    list_uri = f"{authority.issuer}/status/1"
    cert_id = _issue(authority, claims={"status": {"status_list": {"idx": 5, "uri": list_uri}}})
    token = authority.certificates[cert_id].token
    jwks = JWKS.from_dict(authority.jwks_document())
    statuses = StatusList.empty(16, uri=list_uri)
    statuses.set(5, 1)
    verdict = assess_certificate(
        None, token=token, jwks=jwks, issuer=authority.issuer, status_list=statuses
    )
    assert verdict.status == "revoked" and "status list" in verdict.detail


def test_a_record_holding_another_token_is_invalid(
    authority: FakeAuthority, client: AuthorityClient
) -> None:
    cert_id = _issue(authority)
    token = authority.certificates[cert_id].token
    # The authority's record now holds another (validly signed) certificate's token.
    other = _issue(authority, jti=cert_id, cert_id=f"{cert_id}-2")
    authority.certificates[cert_id].record_overrides["token"] = authority.certificates[other].token
    verdict = assess_certificate(client, token=token)
    assert verdict.status == "invalid" and verdict.reasons == ("record_mismatch",)
    assert "does not match" in verdict.detail


def test_an_id_whose_record_carries_another_jti_is_invalid(
    authority: FakeAuthority, client: AuthorityClient
) -> None:
    cert_id = _issue(authority, jti="c-someone-else")
    verdict = assess_certificate(client, cert_id=cert_id)
    assert verdict.status == "invalid" and verdict.reasons == ("jti_mismatch",)
    assert verdict.certificate is None


def test_an_unknown_id_is_no_certificate(client: AuthorityClient) -> None:
    verdict = assess_certificate(client, cert_id="c-nobody")
    assert verdict.status == "no_certificate" and verdict.reasons == ("unknown_certificate",)
    assert isinstance(verdict.error, NotFound)


def test_expired_expiring_and_what_was_asked(
    authority: FakeAuthority, client: AuthorityClient
) -> None:
    old = _issue(authority, issued_at=datetime.now(UTC) - timedelta(days=400))
    assert assess_certificate(client, cert_id=old).reasons == ("expired",)
    soon = _issue(authority, issued_at=datetime.now(UTC) - timedelta(days=350))
    assert assess_certificate(client, cert_id=soon).status == "expiring"
    assert assess_certificate(client, cert_id=soon, expiring_days=5).status == "valid"
    fresh = _issue(authority)
    asked = assess_certificate(client, cert_id=fresh, require="fips-140-3", preset="hipaa")
    assert asked.status == "below_requirement"
    assert asked.reasons == ("standard_not_met", "standard_mismatch")


def test_a_malformed_token_is_invalid_not_raised(client: AuthorityClient) -> None:
    verdict = assess_certificate(client, token="not-a-jws")
    assert verdict.status == "invalid" and verdict.reasons == ("malformed_token",)
