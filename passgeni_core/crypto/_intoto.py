"""in-toto attestations of a certificate: a Statement v1 in a DSSE envelope.

The statement is a pure function of the certificate (its verified claims, its
token and its URL), so whoever holds the certificate can rebuild it and compare:
the authority signs it (``GET /api/certificates/{id}/attestation``), the CLI
(``passgeni export in-toto``) fetches it, verifies the envelope against the JWKS
and checks the statement is exactly the one its certificate implies before it
writes it. Nothing in it comes from anywhere but the signed certificate.

* Envelope: DSSE v1 (``payloadType`` :data:`PAYLOAD_TYPE`, ``payload`` standard
  base64, ``signatures: [{keyid, sig}]``), signed over the DSSE
  pre-authentication encoding (:func:`pae`) with the authority's ES256 key;
  ``sig`` is the **DER** ECDSA signature (what DSSE tools expect, not the JWS
  ``r || s``) and ``keyid`` the key's JWKS ``kid``.
* Statement: ``_type`` :data:`STATEMENT_TYPE`; one subject, the credential (its
  store target, else the certificate's URN), whose digest is the certificate's
  commitment (:data:`SEED_DIGEST` or :data:`BINDING_DIGEST`, lowercase hex);
  ``predicateType`` :data:`PREDICATE_TYPE`; the predicate is documented in
  ``docs/in-toto.md``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from .._errors import BadSignature, MalformedToken, NotAttestable, UnknownKey
from .._untrusted import loads_untrusted
from ..model import CertificateClaims
from ._jws import b64url_decode
from ._verify import JWKS, Certificate

__all__ = [
    "BINDING_DIGEST",
    "PAYLOAD_TYPE",
    "PREDICATE_TYPE",
    "SEED_DIGEST",
    "STATEMENT_TYPE",
    "Attestation",
    "attestation_statement",
    "der_signature",
    "dsse_envelope",
    "pae",
    "statement_payload",
    "verify_attestation",
]

PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://passgeni.ai/attestation/password-generation/v1"
#: DigestSet key of the seed commitment (``generation.seed_commitment``): the
#: domain-separated SHA-256 of the seed the credential is derived from.
SEED_DIGEST = "passgeniSeedCommitmentV1"
#: DigestSet key of a binding-only certificate's ``credential_commitment``
#: (HMAC-SHA256 of the credential under its binding key).
BINDING_DIGEST = "passgeniCredentialCommitmentV1"
#: An envelope is a few KB; anything far larger is refused before parsing.
MAX_ENVELOPE_BYTES = 65_536

_ECDSA_SHA256 = ec.ECDSA(hashes.SHA256())


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding:
    ``"DSSEv1" SP LEN(type) SP type SP LEN(body) SP body`` (lengths in ASCII decimal)."""
    kind = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def der_signature(raw: bytes) -> bytes:
    """A raw ES256 ``r || s`` signature as DER (what DSSE verifiers read)."""
    if len(raw) != 64:
        raise ValueError("an ES256 signature is 64 bytes")
    return encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))


def _subject_name(claims: CertificateClaims) -> str:
    if claims.target is not None:
        return f"{claims.target.system}://{claims.target.path}"
    return f"urn:passgeni:certificate:{claims.jti}"


def _subject_digest(claims: CertificateClaims) -> dict[str, str]:
    try:
        if claims.generation is not None:
            return {SEED_DIGEST: b64url_decode(claims.generation.seed_commitment).hex()}
        if claims.credential_commitment is not None:
            return {BINDING_DIGEST: b64url_decode(claims.credential_commitment).hex()}
    except (ValueError, binascii.Error):
        raise MalformedToken("the certificate's commitment is not base64url") from None
    raise NotAttestable(
        f"certificate {claims.jti} commits to nothing (no generation proof, no binding): "
        "an attestation would have no subject digest"
    )


def attestation_statement(
    claims: CertificateClaims, *, token: str, cert_url: str
) -> dict[str, Any]:
    """The in-toto Statement v1 that the certificate ``token`` (with these verified
    ``claims``, served at ``cert_url``) implies. Deterministic.

    Raises:
        NotAttestable: the certificate carries no commitment (nothing to digest).
    """
    payload = claims.to_payload()
    predicate: dict[str, Any] = {
        "certificate": {
            "id": claims.jti,
            "url": cert_url,
            "issuer": claims.iss,
            "issuedAt": claims.issued_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "expiresAt": claims.expires_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "tokenSha256": hashlib.sha256(token.strip().encode("ascii")).hexdigest(),
            "version": claims.cert_version,
        },
        "complianceStandard": claims.compliance_standard,
        "standardsMet": list(claims.standards_met),
        "mappingVersion": claims.mapping_version,
        "parameters": payload["parameters"],
        "entropy": {"bits": claims.entropy_bits, "naiveBits": claims.naive_entropy_bits},
        "generation": payload.get("generation"),
        "binding": (
            None
            if claims.credential_commitment is None
            else {"credentialCommitment": claims.credential_commitment}
        ),
        "provenance": payload.get("provenance"),
        "declared": {
            "entropySource": payload["entropy_source"],
            "target": payload.get("target"),
            "label": claims.label,
        },
        "breachCheck": claims.breach_check,
        "statusList": None if claims.status is None else claims.status.to_dict()["status_list"],
    }
    return {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": _subject_name(claims), "digest": _subject_digest(claims)}],
        "predicateType": PREDICATE_TYPE,
        "predicate": predicate,
    }


def statement_payload(statement: dict[str, Any]) -> bytes:
    """The envelope's payload: the statement as compact JSON, keys sorted, UTF-8."""
    return json.dumps(statement, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode(
        "utf-8"
    )


def dsse_envelope(payload: bytes, signatures: list[tuple[str, bytes]]) -> dict[str, Any]:
    """A DSSE envelope of ``payload`` (in-toto) with ``(keyid, DER signature)`` pairs."""
    return {
        "payloadType": PAYLOAD_TYPE,
        "payload": base64.b64encode(payload).decode("ascii"),
        "signatures": [
            {"keyid": keyid, "sig": base64.b64encode(sig).decode("ascii")}
            for keyid, sig in signatures
        ],
    }


@dataclass(frozen=True)
class Attestation:
    """A verified envelope: the key that signed it and the statement it holds."""

    keyid: str
    statement: dict[str, Any]
    envelope: dict[str, Any]

    @property
    def cert_id(self) -> str | None:
        return _named(self.statement, "id")

    @property
    def cert_url(self) -> str | None:
        return _named(self.statement, "url")


def _named(statement: dict[str, Any], field: str) -> str | None:
    """``predicate.certificate.<field>`` of an untrusted statement, if a string."""
    predicate = statement.get("predicate")
    cert = predicate.get("certificate") if isinstance(predicate, dict) else None
    value = cert.get(field) if isinstance(cert, dict) else None
    return value if isinstance(value, str) else None


def _b64(value: object, what: str) -> bytes:
    if not isinstance(value, str):
        raise MalformedToken(f"the envelope's {what} must be a base64 string")
    try:
        return base64.b64decode(value, validate=True)
    except (ValueError, binascii.Error):
        raise MalformedToken(f"the envelope's {what} is not base64") from None


def verify_attestation(
    envelope: object,
    jwks: JWKS,
    *,
    certificate: Certificate | None = None,
    cert_url: str | None = None,
) -> Attestation:
    """Verify a DSSE envelope against the trusted ``jwks`` and return its statement.

    At least one signature must verify (DER ECDSA P-256 over :func:`pae`) with the
    JWKS key its ``keyid`` names. With ``certificate`` (already verified) the
    statement must be exactly :func:`attestation_statement` of it (at ``cert_url``,
    default: the URL the statement names).

    Raises:
        MalformedToken: not a DSSE envelope of an in-toto statement of this predicate.
        UnknownKey: no signature names a trusted key.
        BadSignature: no signature verifies, or the statement is not the certificate's.
    """
    if isinstance(envelope, str | bytes):
        envelope = loads_untrusted(
            envelope, what="DSSE envelope", max_bytes=MAX_ENVELOPE_BYTES, error=MalformedToken
        )
    if not isinstance(envelope, dict):
        raise MalformedToken("a DSSE envelope is a JSON object")
    if envelope.get("payloadType") != PAYLOAD_TYPE:
        raise MalformedToken(f"the envelope's payloadType is not {PAYLOAD_TYPE}")
    payload = _b64(envelope.get("payload"), "payload")
    signatures = envelope.get("signatures")
    if not isinstance(signatures, list) or not signatures:
        raise MalformedToken("the envelope carries no signatures")
    message = pae(PAYLOAD_TYPE, payload)
    signer: str | None = None
    known = False
    for entry in signatures:
        if not isinstance(entry, dict) or not isinstance(entry.get("keyid"), str):
            raise MalformedToken("every envelope signature needs a keyid and a sig")
        key = jwks.get(entry["keyid"])
        if key is None:
            continue
        known = True
        try:
            key.verify(_b64(entry.get("sig"), "signature"), message, _ECDSA_SHA256)
        except InvalidSignature:
            continue
        signer = entry["keyid"]
        break
    if signer is None:
        if not known:
            raise UnknownKey("no signature of the envelope names a key of the trusted JWKS")
        raise BadSignature("the envelope's signature does not verify with the trusted key")
    statement = loads_untrusted(
        payload, what="in-toto statement", max_bytes=MAX_ENVELOPE_BYTES, error=MalformedToken
    )
    if not isinstance(statement, dict) or statement.get("_type") != STATEMENT_TYPE:
        raise MalformedToken(f"the envelope does not hold an in-toto {STATEMENT_TYPE} statement")
    if statement.get("predicateType") != PREDICATE_TYPE:
        raise MalformedToken(f"the statement's predicateType is not {PREDICATE_TYPE}")
    if certificate is not None:
        url = cert_url if cert_url is not None else (_named(statement, "url") or "")
        expected = attestation_statement(certificate.claims, token=certificate.token, cert_url=url)
        if statement != expected:
            raise BadSignature(
                f"the attestation's statement is not the one certificate {certificate.cert_id} implies"
            )
    return Attestation(keyid=signer, statement=statement, envelope=envelope)
