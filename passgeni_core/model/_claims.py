"""The certificate payload (``cert_version`` 2.0), as a typed model.

The payload states public facts only: the parameters, the entropy, the
standards met, where the randomness came from, and optionally a commitment to
the credential and the location it was stored at. It never contains the
password or the binding key.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeGuard

from .._errors import InvalidRequest, MalformedToken
from ._presets import same_standard
from ._provenance import Provenance, fips_problem

__all__ = [
    "CERT_LIFETIME",
    "CERT_VERSION",
    "EMBEDDED_ISSUER_NOTE",
    "EMBEDDED_ISSUER_PREFIX",
    "CertificateClaims",
    "Generation",
    "StatusReference",
    "Target",
    "is_embedded_issuer",
]

CERT_VERSION = "2.0"
CERT_LIFETIME = timedelta(days=365)

_TARGET_FIELD_MAX = 512
_TARGET_FIELDS = frozenset({"system", "path", "version", "address", "namespace"})

#: The ``iss`` of every certificate an embedded (in-process, throwaway)
#: authority signs starts with this, followed by its state directory's id
#: (``embedded:3f9c0a1b2c3d4e5f``). Not a URL on purpose: nobody can resolve it,
#: so nobody mistakes it for an authority an auditor could ask, and since the
#: marking is the signed ``iss`` itself it survives offline verification.
EMBEDDED_ISSUER_PREFIX = "embedded:"
#: What every surface (certificate page, ``verify``, scan) says about such a certificate.
EMBEDDED_ISSUER_NOTE = "issued by an embedded, throwaway authority: not evidence for an auditor"
_EMBEDDED_ISSUER_RE = re.compile(r"embedded:[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def is_embedded_issuer(issuer: object) -> TypeGuard[str]:
    """True for the issuer of an embedded authority (``embedded:<id>``)."""
    return isinstance(issuer, str) and _EMBEDDED_ISSUER_RE.fullmatch(issuer) is not None


def _ts(value: datetime) -> int:
    if value.tzinfo is None:
        raise ValueError("datetimes must be timezone-aware")
    return int(value.timestamp())


@dataclass(frozen=True, kw_only=True)
class Target:
    """Where the certified credential was stored (system, path, version).

    ``address`` and ``namespace`` say which store: Vault's address and namespace (a
    ``vault://secret/app/db`` exists in every Vault). Absent in certificates made before
    they were recorded, and for stores a URI already names completely.
    """

    system: str
    path: str
    version: str | None = None
    address: str | None = None
    namespace: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"system": self.system, "path": self.path}
        if self.version is not None:
            out["version"] = self.version
        if self.address is not None:
            out["address"] = self.address
        if self.namespace is not None:
            out["namespace"] = self.namespace
        return out

    @classmethod
    def from_dict(cls, data: object) -> Target:
        """Parse a target object.

        Raises:
            InvalidRequest: not an object, missing or ill-typed fields, too long.
        """
        if not isinstance(data, dict):
            raise InvalidRequest("target must be an object with system, path and optional version")
        unknown = sorted(str(k)[:40] for k in data if k not in _TARGET_FIELDS)
        if unknown:
            raise InvalidRequest(f"unknown target field(s): {', '.join(unknown)}")
        system, path, version = data.get("system"), data.get("path"), data.get("version")
        if not isinstance(system, str) or not system or len(system) > 32:
            raise InvalidRequest(
                "target.system must be a non-empty string of at most 32 characters"
            )
        if not isinstance(path, str) or not path or len(path) > _TARGET_FIELD_MAX:
            raise InvalidRequest(
                f"target.path must be a non-empty string of at most {_TARGET_FIELD_MAX} characters"
            )
        if version is not None:
            if isinstance(version, int) and not isinstance(version, bool):
                version = str(version)
            if not isinstance(version, str) or len(version) > 128:
                raise InvalidRequest("target.version must be a string of at most 128 characters")
        scope: dict[str, str] = {}
        for name in ("address", "namespace"):
            value = data.get(name)
            if value is None:
                continue
            if not isinstance(value, str) or not value or len(value) > _TARGET_FIELD_MAX:
                raise InvalidRequest(
                    f"target.{name} must be a non-empty string of at most "
                    f"{_TARGET_FIELD_MAX} characters"
                )
            scope[name] = value
        return cls(system=system, path=path, version=version, **scope)


@dataclass(frozen=True, kw_only=True)
class StatusReference:
    """Position of this certificate in a signed status list (offline revocation)."""

    idx: int
    uri: str

    def to_dict(self) -> dict[str, Any]:
        return {"status_list": {"idx": self.idx, "uri": self.uri}}


_B64_32 = re.compile(r"^[A-Za-z0-9_-]{43}$")


@dataclass(frozen=True)
class Generation:
    """How the certified password was generated (commit-reveal, see :mod:`._derive`).

    ``seed_commitment`` is the client's commitment to its seed, sent before the
    authority chose ``nonce``; ``generator`` names the published derivation.
    All three are public: without the seed they reveal nothing about the password.
    """

    generator: str
    seed_commitment: str
    nonce: str

    def to_dict(self) -> dict[str, str]:
        return {
            "generator": self.generator,
            "seed_commitment": self.seed_commitment,
            "nonce": self.nonce,
        }

    @classmethod
    def from_dict(cls, data: object) -> Generation:
        """Raises MalformedToken: not an object of three well-formed strings."""
        if not isinstance(data, dict):
            raise MalformedToken("certificate claim 'generation' must be an object")
        generator, commitment, nonce = (
            data.get("generator"),
            data.get("seed_commitment"),
            data.get("nonce"),
        )
        if not isinstance(generator, str) or not 1 <= len(generator) <= 64:
            raise MalformedToken("certificate claim 'generation.generator' is malformed")
        for name, value in (("seed_commitment", commitment), ("nonce", nonce)):
            if not isinstance(value, str) or not _B64_32.match(value):
                raise MalformedToken(f"certificate claim 'generation.{name}' is malformed")
        assert isinstance(commitment, str) and isinstance(nonce, str)
        return cls(generator=generator, seed_commitment=commitment, nonce=nonce)


@dataclass(frozen=True, kw_only=True)
class CertificateClaims:
    """The JWT payload of a PassGeni compliance certificate."""

    iss: str
    sub: str
    iat: int
    nbf: int
    exp: int
    jti: str
    compliance_standard: str
    standards_met: tuple[str, ...]
    entropy_bits: float
    parameters: dict[str, Any]
    entropy_source: dict[str, Any]
    mapping_version: str
    cert_version: str = CERT_VERSION
    naive_entropy_bits: float | None = None
    breach_check: dict[str, Any] | None = None
    credential_commitment: str | None = None
    generation: Generation | None = None
    #: What the authority observed and what the client declared (see :mod:`._provenance`).
    provenance: Provenance | None = None
    target: Target | None = None
    label: str | None = None
    status: StatusReference | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def cert_id(self) -> str:
        return self.jti

    def certified_for(self, standard: str) -> bool:
        """Whether this certificate is for ``standard`` (a preset id or a claim id).

        Certificates name standards by claim id (``SOC2``); those issued before
        the claim ids by preset id (``soc2``): both read the same here.
        """
        return same_standard(self.compliance_standard, standard)

    def meets(self, standard: str) -> bool:
        """Whether ``standard`` (a preset id or a claim id) is among the standards met."""
        return any(same_standard(met, standard) for met in self.standards_met)

    def fips_problem(self) -> str:
        """Why the FIPS 140-3 claim is more than the certificate's own rule allows ('' if not)."""
        return fips_problem(self.provenance, self.standards_met, self.entropy_source)

    @property
    def embedded_issuer(self) -> bool:
        """Signed by an embedded, throwaway authority (see :data:`EMBEDDED_ISSUER_PREFIX`)."""
        return is_embedded_issuer(self.iss)

    @property
    def issued_at(self) -> datetime:
        return datetime.fromtimestamp(self.iat, UTC)

    @property
    def expires_at(self) -> datetime:
        return datetime.fromtimestamp(self.exp, UTC)

    @classmethod
    def build(
        cls,
        *,
        issuer: str,
        subject: str,
        cert_id: str,
        compliance_standard: str,
        standards_met: list[str] | tuple[str, ...],
        entropy_bits: float,
        parameters: dict[str, Any],
        entropy_source: dict[str, Any],
        mapping_version: str,
        issued_at: datetime,
        lifetime: timedelta = CERT_LIFETIME,
        naive_entropy_bits: float | None = None,
        breach_check: dict[str, Any] | None = None,
        credential_commitment: str | None = None,
        generation: Generation | None = None,
        provenance: Provenance | None = None,
        target: Target | None = None,
        label: str | None = None,
        status: StatusReference | None = None,
    ) -> CertificateClaims:
        """Claims for a new certificate: ``exp`` = ``iat`` + 365 days by default."""
        iat = _ts(issued_at)
        return cls(
            iss=issuer,
            sub=subject,
            iat=iat,
            nbf=iat,
            exp=iat + int(lifetime.total_seconds()),
            jti=cert_id,
            compliance_standard=compliance_standard,
            standards_met=tuple(standards_met),
            entropy_bits=entropy_bits,
            parameters=dict(parameters),
            entropy_source=dict(entropy_source),
            mapping_version=mapping_version,
            naive_entropy_bits=naive_entropy_bits,
            breach_check=breach_check,
            credential_commitment=credential_commitment,
            generation=generation,
            provenance=provenance,
            target=target,
            label=label,
            status=status,
        )

    def to_payload(self) -> dict[str, Any]:
        """The JSON object that is signed."""
        out: dict[str, Any] = {
            "iss": self.iss,
            "sub": self.sub,
            "iat": self.iat,
            "nbf": self.nbf,
            "exp": self.exp,
            "jti": self.jti,
            "cert_version": self.cert_version,
            "compliance_standard": self.compliance_standard,
            "standards_met": list(self.standards_met),
            "entropy_bits": self.entropy_bits,
            "parameters": self.parameters,
            "entropy_source": self.entropy_source,
            "mapping_version": self.mapping_version,
        }
        if self.naive_entropy_bits is not None:
            out["naive_entropy_bits"] = self.naive_entropy_bits
        if self.breach_check is not None:
            out["breach_check"] = self.breach_check
        if self.credential_commitment is not None:
            out["credential_commitment"] = self.credential_commitment
        if self.generation is not None:
            out["generation"] = self.generation.to_dict()
        if self.provenance is not None:
            out["provenance"] = self.provenance.to_dict()
        if self.target is not None:
            out["target"] = self.target.to_dict()
        if self.label is not None:
            out["label"] = self.label
        if self.status is not None:
            out["status"] = self.status.to_dict()
        out.update(self.extra)
        return out

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> CertificateClaims:
        """Parse a verified payload.

        Raises:
            MalformedToken: a required claim is missing or has the wrong type.
        """

        def need(name: str, kind: type | tuple[type, ...]) -> Any:
            value = payload.get(name)
            if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
                raise MalformedToken(f"certificate claim {name!r} is missing or malformed")
            return value

        for name in ("iat", "nbf", "exp"):
            need(name, int)
        bits = need("entropy_bits", (int, float))
        if not math.isfinite(float(bits)):
            raise MalformedToken("certificate claim 'entropy_bits' is not a finite number")
        standards = need("standards_met", list)
        if not all(isinstance(s, str) for s in standards):
            raise MalformedToken("certificate claim 'standards_met' must be a list of strings")
        target = None
        if payload.get("target") is not None:
            try:
                target = Target.from_dict(payload["target"])
            except InvalidRequest as exc:
                raise MalformedToken(
                    f"certificate claim 'target' is malformed: {exc.message}"
                ) from None
        status = None
        raw_status = payload.get("status")
        if raw_status is not None:
            sl = raw_status.get("status_list") if isinstance(raw_status, dict) else None
            if (
                not isinstance(sl, dict)
                or not isinstance(sl.get("idx"), int)
                or isinstance(sl.get("idx"), bool)
                or not isinstance(sl.get("uri"), str)
            ):
                raise MalformedToken("certificate claim 'status' is malformed")
            status = StatusReference(idx=sl["idx"], uri=sl["uri"])
        known = {
            "iss", "sub", "iat", "nbf", "exp", "jti", "cert_version", "compliance_standard",
            "standards_met", "entropy_bits", "parameters", "entropy_source", "mapping_version",
            "naive_entropy_bits", "breach_check", "credential_commitment", "target", "label",
            "status", "generation", "provenance",
        }  # fmt: skip
        commitment = payload.get("credential_commitment")
        if commitment is not None and not isinstance(commitment, str):
            raise MalformedToken("certificate claim 'credential_commitment' must be a string")
        label = payload.get("label")
        if label is not None and not isinstance(label, str):
            raise MalformedToken("certificate claim 'label' must be a string")
        naive = payload.get("naive_entropy_bits")
        if naive is not None and (isinstance(naive, bool) or not isinstance(naive, int | float)):
            raise MalformedToken("certificate claim 'naive_entropy_bits' must be a number")
        breach = payload.get("breach_check")
        if breach is not None and not isinstance(breach, dict):
            raise MalformedToken("certificate claim 'breach_check' must be an object")
        return cls(
            iss=need("iss", str),
            sub=need("sub", str),
            iat=payload["iat"],
            nbf=payload["nbf"],
            exp=payload["exp"],
            jti=need("jti", str),
            cert_version=need("cert_version", str),
            compliance_standard=need("compliance_standard", str),
            standards_met=tuple(standards),
            entropy_bits=float(bits),
            parameters=need("parameters", dict),
            entropy_source=need("entropy_source", dict),
            mapping_version=need("mapping_version", str),
            naive_entropy_bits=None if naive is None else float(naive),
            breach_check=breach,
            credential_commitment=commitment,
            generation=(
                None
                if payload.get("generation") is None
                else Generation.from_dict(payload["generation"])
            ),
            provenance=(
                None
                if payload.get("provenance") is None
                else Provenance.from_dict(payload["provenance"])
            ),
            target=target,
            label=label,
            status=status,
            extra={k: v for k, v in payload.items() if k not in known},
        )
