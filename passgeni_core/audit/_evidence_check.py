"""Checking an evidence bundle offline (see :mod:`._evidence` for its layout and trust anchor)."""

from __future__ import annotations

import dataclasses
import io
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .._errors import InvalidRequest, InvalidToken, MalformedToken, PassgeniError, WrongIssuer
from .._untrusted import loads_untrusted
from ..crypto import (
    JWKS,
    StatusList,
    check_revocation,
    jwk_thumbprint,
    parse_header,
    verify_certificate_at_issuance,
    verify_jws,
    verify_status_list,
)
from ._statements import SourceStatements, source_statements

__all__ = ["BundleReport", "CertificateVerdict", "verify_bundle"]
from ._evidence import (
    _MAX_MEMBER_BYTES,
    _MAX_MEMBERS,
    _MAX_TOTAL_BYTES,
    BUNDLE_FORMAT,
    JWKS_FILE,
    MANIFEST,
    MANIFEST_SIG,
    MANIFEST_TYP,
    POLICY_FILE,
    REGISTRY_FILE,
    VERIFY_FILE,
    _iso,
    _sha256,
)


@dataclass(frozen=True, kw_only=True)
class CertificateVerdict:
    """The verdict on one certificate of the bundle."""

    cert_id: str
    #: ``valid``, ``expired``, ``revoked`` or ``invalid``.
    verdict: str
    detail: str = ""
    standard: str | None = None
    expires_at: datetime | None = None
    code: str | None = None
    #: What the client declared, what the authority observed, the FIPS 140-3 claim
    #: and its rule (``None`` for a certificate that did not verify).
    sources: SourceStatements | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "cert_id": self.cert_id,
            "verdict": self.verdict,
            "detail": self.detail,
            "standard": self.standard,
            "expires_at": _iso(self.expires_at),
            "code": self.code,
            "sources": None if self.sources is None else self.sources.to_dict(),
        }


@dataclass(frozen=True, kw_only=True)
class BundleReport:
    """What :func:`verify_bundle` found. ``authentic`` is the bundle-level verdict."""

    problems: tuple[str, ...]
    verdicts: tuple[CertificateVerdict, ...]
    issuer: str | None = None
    created_at: datetime | None = None
    kids: tuple[str, ...] = ()
    pinned: bool = False
    notes: tuple[str, ...] = field(default=())

    @property
    def authentic(self) -> bool:
        """Signed manifest, every digest right, no file added or missing, no bad certificate."""
        return not self.problems and all(v.verdict != "invalid" for v in self.verdicts)

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for v in self.verdicts:
            out[v.verdict] = out.get(v.verdict, 0) + 1
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "authentic": self.authentic,
            "issuer": self.issuer,
            "created_at": _iso(self.created_at),
            "keys": list(self.kids),
            "keys_pinned": self.pinned,
            "problems": list(self.problems),
            "notes": list(self.notes),
            "counts": self.counts(),
            "certificates": [v.to_dict() for v in self.verdicts],
        }


def _read_members(data: bytes) -> dict[str, bytes]:
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except Exception:  # any failure to read an untrusted archive means it is corrupt
        raise InvalidRequest("the evidence bundle is not a zip archive (or is corrupt)") from None
    with zf:
        infos = zf.infolist()
        if len(infos) > _MAX_MEMBERS:
            raise InvalidRequest("the evidence bundle has too many files")
        total = 0
        out: dict[str, bytes] = {}
        for info in infos:
            name = info.filename
            if info.is_dir():
                continue
            if name.startswith("/") or "\\" in name or ".." in name.split("/"):
                raise InvalidRequest(f"the evidence bundle holds an unsafe path {name[:100]!r}")
            if name in out:
                raise InvalidRequest(f"the evidence bundle holds {name[:100]!r} twice")
            if info.file_size > _MAX_MEMBER_BYTES:
                raise InvalidRequest(f"{name[:100]!r} in the evidence bundle is too large")
            total += info.file_size
            if total > _MAX_TOTAL_BYTES:
                raise InvalidRequest("the evidence bundle is too large")
            try:
                with zf.open(info) as fh:
                    content = fh.read(_MAX_MEMBER_BYTES + 1)
            except Exception as exc:
                # A CRC mismatch, a broken DEFLATE stream: the archive itself was altered.
                raise InvalidRequest(
                    f"{name[:100]!r} in the evidence bundle is corrupt ({type(exc).__name__})"
                ) from None
            if len(content) > _MAX_MEMBER_BYTES:
                raise InvalidRequest(f"{name[:100]!r} in the evidence bundle is too large")
            out[name] = content
    return out


def _bundle_keys(raw: bytes, problems: list[str]) -> tuple[JWKS | None, list[str]]:
    try:
        document = loads_untrusted(raw, what=JWKS_FILE, max_bytes=_MAX_MEMBER_BYTES)
        keys = JWKS.from_dict(document)
    except (ValueError, PassgeniError) as exc:
        problems.append(f"{JWKS_FILE} is not a valid JWK Set ({type(exc).__name__})")
        return None, []
    kids: list[str] = []
    for jwk in document.get("keys", []):
        if not isinstance(jwk, dict) or jwk.get("kty") != "EC":
            continue
        try:
            thumb = jwk_thumbprint(jwk)
        except (KeyError, TypeError):
            problems.append(f"{JWKS_FILE}: a key lacks crv/kty/x/y")
            continue
        if jwk.get("kid") != thumb:
            problems.append(
                f"{JWKS_FILE}: key {str(jwk.get('kid'))[:64]!r} is not its RFC 7638 thumbprint"
            )
        kids.append(str(jwk.get("kid")))
    return keys, kids


def verify_bundle(
    data: bytes,
    *,
    issuer: str | None = None,
    trusted_jwks: JWKS | Mapping[str, Any] | str | bytes | None = None,
    trusted_log_key: str | None = None,
) -> BundleReport:
    """Check an evidence bundle offline (see the module docstring).

    Problems with the bundle are collected, never raised, so the report shows
    all of them; the certificates are judged even when a file digest fails.
    When the bundle carries the transparency log, every certificate must be a leaf
    of its checkpoint (``trusted_log_key`` pins the log's key).

    Raises:
        InvalidRequest: not a zip, unsafe paths, over the size limits, a corrupt member.
    """
    members = _read_members(data)
    problems: list[str] = []
    notes: list[str] = []
    manifest_raw = members.get(MANIFEST)
    signature = members.get(MANIFEST_SIG)
    if manifest_raw is None or signature is None:
        raise InvalidRequest(f"the evidence bundle has no {MANIFEST} or {MANIFEST_SIG}")
    try:
        manifest = loads_untrusted(manifest_raw, what=MANIFEST, max_bytes=_MAX_MEMBER_BYTES)
        if not isinstance(manifest, dict) or manifest.get("format") != BUNDLE_FORMAT:
            raise ValueError
        files = manifest["files"]
        certs = manifest["certificates"]
        lists = manifest["status_lists"]
        if not all(isinstance(x, dict) for x in (files, certs, lists)):
            raise ValueError
    except (ValueError, KeyError, UnicodeDecodeError):
        raise InvalidRequest(f"{MANIFEST} is not a {BUNDLE_FORMAT} manifest") from None
    claimed_issuer = manifest.get("issuer")
    expected = issuer or (claimed_issuer if isinstance(claimed_issuer, str) else None)
    if expected is None:
        raise InvalidRequest("the manifest names no issuer; pass --issuer")
    if issuer is None:
        notes.append(
            f"issuer taken from the bundle ({expected}); pin it with --issuer for an audit"
        )
    created_at: datetime | None = None
    try:
        created_at = datetime.fromisoformat(str(manifest.get("created_at")))
    except ValueError:
        problems.append(f"{MANIFEST}: created_at is not an ISO 8601 time")

    # Keys: the bundle's history, or the pinned set.
    bundle_keys, kids = _bundle_keys(members.get(JWKS_FILE, b""), problems)
    pinned = trusted_jwks is not None
    keys: JWKS | None
    if trusted_jwks is not None:
        keys = JWKS.coerce(trusted_jwks)
        missing = [k for k in kids if k not in keys]
        if missing:
            notes.append(
                f"{len(missing)} key(s) of the bundle's history are not in the trusted set: "
                + ", ".join(m[:16] for m in missing)
            )
    else:
        keys = bundle_keys
        notes.append(
            "keys taken from the bundle (kids: "
            + ", ".join(k[:16] for k in kids)
            + "); compare them with the authority's published JWKS or pass --jwks"
        )
    if keys is None:
        keys = JWKS({})

    # 1. The manifest's signature.
    try:
        text = signature.decode("ascii").strip()
        header = parse_header(text.split(".", 1)[0])
        if header.get("typ") != MANIFEST_TYP:
            raise MalformedToken(f"{MANIFEST_SIG} must have typ {MANIFEST_TYP!r}")
        _kid, payload = verify_jws(text, keys)
        if payload.get("iss") != expected:
            raise WrongIssuer(f"{MANIFEST_SIG} was issued by {str(payload.get('iss'))[:100]!r}")
        if payload.get("manifest_sha256") != _sha256(manifest_raw):
            problems.append(f"{MANIFEST} does not match the digest signed in {MANIFEST_SIG}")
    except (InvalidToken, UnicodeDecodeError) as exc:
        detail = exc.message if isinstance(exc, PassgeniError) else "not ASCII"
        problems.append(f"{MANIFEST_SIG} does not verify: {detail}")
    if claimed_issuer != expected:
        problems.append(f"{MANIFEST} names issuer {str(claimed_issuer)[:100]!r}, not {expected!r}")

    # 2. Every file's digest; nothing added, nothing missing.
    present = set(members) - {MANIFEST, MANIFEST_SIG}
    for path in sorted(present - set(files)):
        problems.append(f"{path} is in the archive but not in the manifest")
    for path, info in sorted(files.items()):
        content = members.get(path)
        if content is None:
            problems.append(f"{path} is listed in the manifest but missing")
        elif not isinstance(info, dict) or info.get("sha256") != _sha256(content):
            problems.append(f"{path} does not match its SHA-256 in the manifest")
    for path in (JWKS_FILE, REGISTRY_FILE, POLICY_FILE, VERIFY_FILE):
        if path not in files:
            problems.append(f"the manifest does not list {path}")

    # 3. Each certificate.
    verified_lists: dict[str, StatusList | PassgeniError] = {}

    def status_list(uri: str) -> StatusList | PassgeniError:
        if uri not in verified_lists:
            path = lists.get(uri)
            content = members.get(path) if isinstance(path, str) else None
            if content is None:
                verified_lists[uri] = InvalidRequest(f"no snapshot of status list {uri}")
            else:
                try:
                    verified_lists[uri] = verify_status_list(
                        content, keys, issuer=expected, uri=uri, now=created_at
                    )
                except PassgeniError as exc:
                    verified_lists[uri] = exc
        return verified_lists[uri]

    verdicts: list[CertificateVerdict] = []
    for cert_id, path in sorted(certs.items()):
        content = members.get(path) if isinstance(path, str) else None
        if content is None:
            verdicts.append(
                CertificateVerdict(cert_id=cert_id, verdict="invalid", detail="file missing")
            )
            continue
        try:
            cert = verify_certificate_at_issuance(content, keys, issuer=expected)
        except PassgeniError as exc:
            verdicts.append(
                CertificateVerdict(
                    cert_id=cert_id, verdict="invalid", detail=exc.message, code=exc.code
                )
            )
            continue
        claims = cert.claims
        sources = source_statements(claims)
        if sources.problem:
            notes.append(f"{cert_id}: the FIPS 140-3 claim goes beyond its rule: {sources.problem}")
        base: dict[str, Any] = {
            "standard": claims.compliance_standard,
            "expires_at": claims.expires_at,
            "sources": sources,
        }
        if cert.cert_id != cert_id:
            verdicts.append(
                CertificateVerdict(
                    cert_id=cert_id,
                    verdict="invalid",
                    detail=f"the file holds certificate {cert.cert_id}",
                    code="invalid_token",
                    **base,
                )
            )
            continue
        revocation = "revocation not checkable offline (no status reference)"
        if claims.status is not None:
            lst = status_list(claims.status.uri)
            if isinstance(lst, PassgeniError):
                revocation = f"revocation not checkable: {lst.message}"
            else:
                try:
                    check_revocation(cert, lst)
                    revocation = f"not revoked as of {_iso(lst.issued_at)}"
                except PassgeniError as exc:
                    verdicts.append(
                        CertificateVerdict(
                            cert_id=cert_id,
                            verdict="revoked",
                            detail=f"{exc.message}, as of {_iso(lst.issued_at)}",
                            code=exc.code,
                            **base,
                        )
                    )
                    continue
        if created_at is not None and created_at >= claims.expires_at:
            verdicts.append(
                CertificateVerdict(
                    cert_id=cert_id,
                    verdict="expired",
                    detail=f"expired {_iso(claims.expires_at)}; {revocation}",
                    code="certificate_expired",
                    **base,
                )
            )
            continue
        verdicts.append(
            CertificateVerdict(
                cert_id=cert_id,
                verdict="valid",
                detail=f"signature OK ({cert.kid[:12]}...); {revocation}",
                **base,
            )
        )
    verdicts = _with_log(members, manifest, certs, verdicts, problems, notes, trusted_log_key)
    return BundleReport(
        problems=tuple(problems),
        verdicts=tuple(verdicts),
        issuer=expected,
        created_at=created_at,
        kids=tuple(kids),
        pinned=pinned,
        notes=tuple(notes),
    )


def _with_log(
    members: Mapping[str, bytes],
    manifest: Mapping[str, Any],
    certs: Mapping[str, Any],
    verdicts: list[CertificateVerdict],
    problems: list[str],
    notes: list[str],
    trusted_key: str | None,
) -> list[CertificateVerdict]:
    """The verdicts with each certificate's place in the transparency log (a certificate
    the bundle's log does not include is invalid)."""
    from ._evidence_log import check_log

    if not manifest.get("log"):
        notes.append("the bundle carries no transparency log (an authority without one)")
        if trusted_key is not None:
            problems.append("a log key was given, but the bundle carries no transparency log")
        return verdicts
    tokens = {
        cert_id: members[path]
        for cert_id, path in certs.items()
        if isinstance(path, str) and path in members
    }
    checkpoint, placed, log_problems = check_log(members, tokens, trusted_key=trusted_key)
    problems.extend(log_problems)
    if checkpoint is None:
        return verdicts
    if trusted_key is None:
        notes.append(
            "log key taken from the bundle; compare it with the authority's "
            "/.well-known/log-key or pass --log-key"
        )
    out = []
    for v in verdicts:
        where = placed.get(v.cert_id)
        if v.verdict == "invalid" or where is None:
            out.append(v)
        elif where.startswith("!"):
            out.append(
                dataclasses.replace(
                    v,
                    verdict="invalid",
                    detail=f"not shown to be in the transparency log: {where[1:]}",
                    code="log_proof_invalid",
                )
            )
        else:
            out.append(dataclasses.replace(v, detail=f"{v.detail}; log {where}"))
    return out
