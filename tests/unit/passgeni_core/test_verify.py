"""Offline verification refuses every forgery and misuse with its own code."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm

from passgeni_core import (
    JWKS,
    MAPPING_VERSION,
    AlgorithmNotAllowed,
    BadSignature,
    BindingMismatch,
    CertificateClaims,
    CertificateExpired,
    CertificateNotYetValid,
    Credential,
    ForbiddenHeader,
    GenerationParameters,
    InvalidRequest,
    InvalidToken,
    MalformedToken,
    Target,
    UnknownKey,
    UnsupportedCertVersion,
    WrongIssuer,
    entropy_report,
    generate,
    standards_met,
    verify_binding,
    verify_certificate,
    verify_certificate_at_issuance,
)
from passgeni_core.crypto import b64url_encode
from passgeni_core.testing import low_s_token

ISSUER = "https://authority.test"
ISSUED = datetime(2026, 1, 10, 12, 0, tzinfo=UTC)
DURING = ISSUED + timedelta(days=30)


def _b64(data: bytes) -> str:
    return b64url_encode(data)


class Keys:
    def __init__(self) -> None:
        self.private = ec.generate_private_key(ec.SECP256R1())
        self.kid = "k1"
        jwk = ECAlgorithm.to_jwk(self.private.public_key(), as_dict=True)
        self.jwks: dict[str, Any] = {
            "keys": [{**jwk, "kid": self.kid, "alg": "ES256", "use": "sig"}]
        }

    def claims(self, **overrides: Any) -> dict[str, Any]:
        params = GenerationParameters.for_preset("soc2")
        report = entropy_report(params)
        claims = CertificateClaims.build(
            issuer=ISSUER,
            subject="user-1",
            cert_id="pg_test1",
            compliance_standard="soc2",
            standards_met=standards_met(params),
            entropy_bits=report.bits,
            naive_entropy_bits=report.naive_bits,
            parameters=params.to_dict(),
            entropy_source={"api": "os.urandom", "fips_mode": False},
            mapping_version=MAPPING_VERSION,
            issued_at=ISSUED,
            target=Target(system="vault", path="secret/app#password", version="3"),
        ).to_payload()
        claims.update(overrides)
        return claims

    def sign(self, payload: dict[str, Any] | None = None, **headers: Any) -> str:
        hdr = {"kid": self.kid, **headers}
        return low_s_token(
            jwt.encode(payload or self.claims(), self.private, algorithm="ES256", headers=hdr)
        )

    def sign_raw(self, header: dict[str, Any], payload: dict[str, Any] | None = None) -> str:
        """Sign any header, even ones pyjwt refuses to produce (crit, non-string kid)."""
        signing_input = ".".join(
            [_b64(json.dumps(header).encode()), _b64(json.dumps(payload or self.claims()).encode())]
        )
        sig = ECAlgorithm(ECAlgorithm.SHA256).sign(signing_input.encode(), self.private)
        return f"{signing_input}.{_b64(sig)}"


@pytest.fixture(scope="module")
def keys() -> Keys:
    return Keys()


def test_a_genuine_certificate_verifies_with_typed_claims(keys: Keys) -> None:
    cert = verify_certificate(keys.sign(), keys.jwks, issuer=ISSUER, now=DURING)
    assert cert.cert_id == "pg_test1" and cert.kid == "k1"
    assert cert.claims.cert_version == "2.0"
    assert cert.claims.exp - cert.claims.iat == 365 * 86400
    assert cert.claims.target == Target(system="vault", path="secret/app#password", version="3")
    assert "soc2" in cert.claims.standards_met and cert.claims.entropy_bits == 130.93
    assert not cert.historical


def _forge(header: dict[str, Any], payload: dict[str, Any], signature: bytes = b"sig") -> str:
    return ".".join(
        [_b64(json.dumps(header).encode()), _b64(json.dumps(payload).encode()), _b64(signature)]
    )


def test_alg_none_is_refused(keys: Keys) -> None:
    token = _forge({"alg": "none", "kid": "k1"}, keys.claims(), b"")
    with pytest.raises(AlgorithmNotAllowed):
        verify_certificate(token, keys.jwks, issuer=ISSUER, now=DURING)


def test_hs256_signed_with_the_public_key_is_refused(keys: Keys) -> None:
    pem = keys.private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    import hashlib
    import hmac

    header = _b64(json.dumps({"alg": "HS256", "kid": "k1"}).encode())
    body = _b64(json.dumps(keys.claims()).encode())
    sig = hmac.new(pem, f"{header}.{body}".encode(), hashlib.sha256).digest()
    with pytest.raises(AlgorithmNotAllowed):
        verify_certificate(f"{header}.{body}.{_b64(sig)}", keys.jwks, issuer=ISSUER, now=DURING)


def test_rs256_is_refused(keys: Keys) -> None:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token = jwt.encode(keys.claims(), rsa_key, algorithm="RS256", headers={"kid": "k1"})
    with pytest.raises(AlgorithmNotAllowed):
        verify_certificate(token, keys.jwks, issuer=ISSUER, now=DURING)


@pytest.mark.parametrize("header", ["jwk", "jku", "x5u", "x5c", "crit"])
def test_key_locating_headers_are_refused(keys: Keys, header: str) -> None:
    value: Any = {"kty": "EC"} if header == "jwk" else "https://evil.test/keys"
    if header in ("x5c", "crit"):
        value = ["x"]
    token = keys.sign_raw({"alg": "ES256", "kid": "k1", header: value})
    with pytest.raises(ForbiddenHeader):
        verify_certificate(token, keys.jwks, issuer=ISSUER, now=DURING)


@pytest.mark.parametrize("kid", ["k2", "../../etc/passwd", "k1/../k1", "", None, 7])
def test_unknown_or_tricky_kid_is_refused(keys: Keys, kid: Any) -> None:
    header = {"alg": "ES256", "kid": kid} if kid is not None else {"alg": "ES256"}
    token = keys.sign_raw(header)
    with pytest.raises(UnknownKey):
        verify_certificate(token, keys.jwks, issuer=ISSUER, now=DURING)


def test_a_key_not_in_the_jwks_cannot_sign(keys: Keys) -> None:
    other = ec.generate_private_key(ec.SECP256R1())
    token = jwt.encode(keys.claims(), other, algorithm="ES256", headers={"kid": "k1"})
    with pytest.raises(BadSignature):
        verify_certificate(token, keys.jwks, issuer=ISSUER, now=DURING)


def test_payload_changed_after_signing_is_refused(keys: Keys) -> None:
    header, _, sig = keys.sign().split(".")
    forged = keys.claims(standards_met=["fips-140-3"], entropy_bits=999.0)
    token = f"{header}.{_b64(json.dumps(forged).encode())}.{sig}"
    with pytest.raises(BadSignature):
        verify_certificate(token, keys.jwks, issuer=ISSUER, now=DURING)


@pytest.mark.parametrize("cut", [1, 10, 40])
def test_truncated_tokens_are_refused(keys: Keys, cut: int) -> None:
    token = keys.sign()
    with pytest.raises(InvalidToken):
        verify_certificate(token[:-cut], keys.jwks, issuer=ISSUER, now=DURING)


@pytest.mark.parametrize("token", ["", "abc", "a.b", "a.b.c.d", "!!!.???.***", "x" * 100_000])
def test_garbage_and_oversized_tokens_are_malformed(keys: Keys, token: str) -> None:
    with pytest.raises(MalformedToken):
        verify_certificate(token, keys.jwks, issuer=ISSUER, now=DURING)


def test_oversized_but_validly_signed_tokens_are_refused(keys: Keys) -> None:
    token = keys.sign(keys.claims(label="x" * 20_000))
    with pytest.raises(MalformedToken, match="larger than"):
        verify_certificate(token, keys.jwks, issuer=ISSUER, now=DURING)


def test_expired_and_not_yet_valid(keys: Keys) -> None:
    token = keys.sign()
    with pytest.raises(CertificateExpired):
        verify_certificate(token, keys.jwks, issuer=ISSUER, now=ISSUED + timedelta(days=365))
    with pytest.raises(CertificateNotYetValid):
        verify_certificate(token, keys.jwks, issuer=ISSUER, now=ISSUED - timedelta(seconds=1))
    future = keys.sign(keys.claims(nbf=int((ISSUED + timedelta(days=2)).timestamp())))
    with pytest.raises(CertificateNotYetValid):
        verify_certificate(future, keys.jwks, issuer=ISSUER, now=DURING - timedelta(days=29))
    # iat in the future (nbf in the past) is refused too.
    future_iat = keys.sign(keys.claims(iat=int((ISSUED + timedelta(days=2)).timestamp())))
    with pytest.raises(CertificateNotYetValid):
        verify_certificate(future_iat, keys.jwks, issuer=ISSUER, now=DURING - timedelta(days=29))


def test_wrong_issuer_and_wrong_version(keys: Keys) -> None:
    with pytest.raises(WrongIssuer):
        verify_certificate(keys.sign(), keys.jwks, issuer="https://other.test", now=DURING)
    with pytest.raises(UnsupportedCertVersion):
        verify_certificate(
            keys.sign(keys.claims(cert_version="1.0")), keys.jwks, issuer=ISSUER, now=DURING
        )


def test_ill_typed_claims_are_malformed(keys: Keys) -> None:
    for bad in ({"standards_met": "soc2"}, {"entropy_bits": "lots"}, {"exp": "never"}):
        with pytest.raises(MalformedToken):
            verify_certificate(keys.sign(keys.claims(**bad)), keys.jwks, issuer=ISSUER, now=DURING)


def test_historical_verification_is_explicit(keys: Keys) -> None:
    token = keys.sign()
    later = ISSUED + timedelta(days=800)
    with pytest.raises(CertificateExpired):
        verify_certificate(token, keys.jwks, issuer=ISSUER, now=later)
    cert = verify_certificate_at_issuance(token, keys.jwks, issuer=ISSUER)
    assert cert.historical and cert.verified_as_of == ISSUED
    # Historical mode still refuses forgeries.
    with pytest.raises(BadSignature):
        other = ec.generate_private_key(ec.SECP256R1())
        verify_certificate_at_issuance(
            jwt.encode(keys.claims(), other, algorithm="ES256", headers={"kid": "k1"}),
            keys.jwks,
            issuer=ISSUER,
        )


def test_jwks_parsing_ignores_foreign_keys_and_refuses_garbage(keys: Keys) -> None:
    doc = {"keys": [*keys.jwks["keys"], {"kty": "RSA", "kid": "r", "n": "x", "e": "AQAB"}]}
    assert JWKS.from_dict(doc).kids == ["k1"]
    assert JWKS.from_dict(json.dumps(doc)).kids == ["k1"]
    for bad in ("not json", {"keys": "x"}, [], {"keys": [{"kty": "EC", "crv": "P-256"}]}):
        with pytest.raises(InvalidRequest):
            JWKS.from_dict(bad)


def test_binding_proves_the_stored_credential_is_the_certified_one(keys: Keys) -> None:
    generated = generate(GenerationParameters.for_preset("soc2"))
    credential = Credential.create(generated.password)
    token = keys.sign(keys.claims(credential_commitment=credential.commitment))
    cert = verify_certificate(token, keys.jwks, issuer=ISSUER, now=DURING)
    verify_binding(cert, credential.password, credential.binding_key)
    with pytest.raises(BindingMismatch):
        verify_binding(cert, credential.password + "x", credential.binding_key)
    with pytest.raises(BindingMismatch):
        verify_binding(cert, credential.password, bytes(32))
    # The certificate reveals nothing: neither the password nor the key appear.
    assert credential.password not in token
    assert credential.password not in repr(credential)
    unbound = verify_certificate(keys.sign(), keys.jwks, issuer=ISSUER, now=DURING)
    with pytest.raises(BindingMismatch, match="no credential commitment"):
        verify_binding(unbound, credential.password, credential.binding_key)


def test_error_messages_and_reprs_never_contain_secrets(keys: Keys) -> None:
    secret = "Sup3r-Secret-Pa55word!"
    errors: list[Exception] = []
    for bad in (secret, f"{secret}.{secret}.{secret}"):
        try:
            verify_certificate(bad, keys.jwks, issuer=ISSUER, now=DURING)
        except InvalidToken as exc:
            errors.append(exc)
    assert errors
    for exc in errors:
        assert secret not in str(exc) and secret not in repr(exc)
