"""A certificate has exactly one token string (issue #21, finding 8, by class): the high-S twin
``(r, n - s)`` of a signature, ``=`` padding, set bits past a segment's end and duplicate keys
in a signed payload are other spellings of the same bytes or claims, and are refused; issuers
emit the low-S form."""

from __future__ import annotations

import json
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from passgeni_authority import AuthorityService, AuthoritySettings
from passgeni_core import (
    JWKS,
    BadSignature,
    MalformedToken,
    PassgeniError,
    verify_certificate,
    verify_certificate_at_issuance,
)
from passgeni_core.crypto import P256_ORDER, b64url_decode, b64url_encode, low_s
from passgeni_core.testing import FakeAuthority, low_s_token


def _parts(token: str) -> list[str]:
    return token.split(".")


@pytest.fixture
def authority() -> FakeAuthority:
    return FakeAuthority()


def _verify(authority: FakeAuthority, token: str) -> None:
    verify_certificate_at_issuance(
        token, JWKS.from_dict(authority.jwks_document()), issuer=authority.issuer
    )


def test_the_high_s_twin_verifies_cryptographically_but_is_refused(
    authority: FakeAuthority,
) -> None:
    token = authority.issue(None).token
    _verify(authority, token)
    head, body, sig = _parts(token)
    raw = b64url_decode(sig)
    s = int.from_bytes(raw[32:], "big")
    assert s <= P256_ORDER // 2  # what an issuer emits
    twin = raw[:32] + (P256_ORDER - s).to_bytes(32, "big")
    with pytest.raises(BadSignature, match="low-S"):
        _verify(authority, f"{head}.{body}.{b64url_encode(twin)}")


@pytest.mark.parametrize("spelling", ["padded", "trailing bits", "standard alphabet"])
def test_other_base64_spellings_are_refused(authority: FakeAuthority, spelling: str) -> None:
    head, body, sig = _parts(authority.issue(None).token)
    if spelling == "padded":
        sig += "=="
    elif spelling == "trailing bits":
        # 64 bytes are 86 characters; the last one carries 4 unused bits.
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
        sig = sig[:-1] + alphabet[alphabet.index(sig[-1]) ^ 1]
    else:
        body = body.replace("-", "+").replace("_", "/") + ("+" if "-" not in body else "")
    with pytest.raises(MalformedToken):
        _verify(authority, f"{head}.{body}.{sig}")


def test_a_signed_duplicate_key_is_refused(authority: FakeAuthority) -> None:
    key = authority._keys[authority.kid]
    good = json.loads(b64url_decode(_parts(authority.issue(None).token)[1]))
    body = json.dumps(good)[:-1] + ', "compliance_standard": "FIPS-140-3"}'
    header = b64url_encode(json.dumps({"alg": "ES256", "kid": authority.kid}).encode())
    signing_input = f"{header}.{b64url_encode(body.encode())}".encode()
    der = key.sign(signing_input, ec.ECDSA(jwt.algorithms.hashes.SHA256()))
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

    r, s = decode_dss_signature(der)
    raw = low_s(r.to_bytes(32, "big") + s.to_bytes(32, "big"))
    with pytest.raises(MalformedToken, match="duplicate key 'compliance_standard'"):
        _verify(authority, f"{signing_input.decode()}.{b64url_encode(raw)}")


def test_low_s_is_idempotent_and_the_helper_keeps_tokens_valid(authority: FakeAuthority) -> None:
    token = authority.issue(None).token
    assert low_s_token(token) == token
    raw = b64url_decode(_parts(token)[2])
    assert low_s(low_s(raw)) == low_s(raw) == raw


def test_the_authority_signs_in_low_s_form(tmp_path: Path) -> None:
    import asyncio

    from tests.support.seeds import commitments

    settings = AuthoritySettings(state_dir=tmp_path, public_url="http://a.test")
    with AuthorityService(settings) as svc:
        key = svc.create_api_key("alice", rate_limit=100_000).key

        async def issue() -> list[str]:
            batch = await svc.open_sessions(
                key,
                ip=None,
                endpoint="t",
                body={"compliance_standard": "soc2", "seed_commitments": commitments(64)},
                count=64,
                generation_attempts=64,
            )
            items = [{"generation_session_id": sid} for sid in batch.generation_session_ids]
            issued = await svc.issue_certificates(key, items, ip=None, endpoint="t")
            return [c.token for c in issued if not isinstance(c, PassgeniError)]

        tokens = asyncio.run(issue())
        jwks = svc.jwks()
    assert len(tokens) == 64
    for token in tokens:  # 64 signatures: a high-S one would appear with probability 1 - 2^-64
        raw = b64url_decode(_parts(token)[2])
        assert low_s(raw) == raw
        verify_certificate(token, jwks, issuer="http://a.test")
