"""The part of a run after validation: authority, store, one core call, the result map.

Imported only once the query is valid, so a bad query never pays for
``requests``, ``jwt`` or a store SDK.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from passgeni_core import (
    Credential,
    connect,
    encode_seed,
    open_store,
    parse_store_uri,
    provision,
    resolve_config,
    store_settings,
)
from passgeni_core.workflows import RotationResult, Verdict, assess, ensure_rotated

from ._query import Query

__all__ = ["execute"]


def _iso(value: datetime | None) -> str:
    if value is None:
        return ""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _bits(value: float | None) -> str:
    return "" if value is None else repr(float(value))


def _references(result: RotationResult, query: Query) -> dict[str, str]:
    return {
        "cert_id": result.cert_id or "",
        "cert_url": result.cert_url or "",
        "compliance_standard": result.compliance_standard or query.preset,
        "standards_met": ",".join(result.standards_met),
        "entropy_bits": _bits(result.entropy_bits),
        "expires_at": _iso(result.expires_at),
        "destination": str(result.uri),
        "version": result.version or "",
        "keeper": query.keeper or "",
        "mode": query.mode,
        "status": "valid",
    }


def _judged(verdict: Verdict | None, query: Query, version: str | None) -> dict[str, str]:
    """Read mode's result: what the one judge found at the destination (references only)."""
    claims = verdict.claims if verdict is not None else None
    return {
        "cert_id": (verdict.cert_id if verdict else None) or "",
        "cert_url": (verdict.cert_url if verdict else None) or "",
        "compliance_standard": claims.compliance_standard if claims else "",
        "standards_met": ",".join(verdict.standards_met) if verdict else "",
        "entropy_bits": _bits(claims.entropy_bits if claims else None),
        "expires_at": _iso(verdict.expires_at if verdict else None),
        "destination": query.destination or "",
        "version": version or "",
        "keeper": (verdict.keeper if verdict else None) or "",
        "mode": query.mode,
        "status": verdict.status if verdict else "no_certificate",
        "detail": verdict.detail if verdict else "nothing is stored there",
    }


def execute(query: Query, environ: Mapping[str, str]) -> dict[str, str]:
    """Provision (idempotently, per ``keeper``) and build the flat string result.

    Raises:
        PassgeniError (and subclasses): a store/authority failure or a bad destination.
    """
    destination = parse_store_uri(query.destination) if query.destination else None
    # Fail closed, before any store is opened: no authority, no certificate, no write.
    config = resolve_config(
        url=query.authority_url,
        timeout=query.timeout,
        environ=environ,
        url_option="the query's authority_url",
        embedded_option='authority_url = "embedded"',
    ).require_authority()
    with connect(config) as client:
        if destination is None:
            made = provision(client, query.preset, parameters=query.parameters, label=query.label)
            claims = made.verified.claims
            return {
                "cert_id": made.cert_id,
                "cert_url": made.cert_url,
                "compliance_standard": claims.compliance_standard,
                "standards_met": ",".join(claims.standards_met),
                "entropy_bits": _bits(claims.entropy_bits),
                "expires_at": _iso(claims.expires_at),
                "destination": "",
                "version": "",
                "keeper": query.keeper or "",
                "mode": query.mode,
                "status": "valid",
                "password": made.credential.password,
                "seed": _seed(made.credential),
            }
        # Backends read their ecosystem's configuration (VAULT_*, AWS_*, kubeconfig); the
        # query's store_options are checked against the names the backend takes.
        store = open_store(destination, **store_settings(destination.scheme, query.store_options))
        if query.mode == "read":
            # Plan-safe: read and judge, never write (the store or the authority).
            try:
                current = store.read(destination)
                verdict = (
                    None
                    if current is None
                    else assess(
                        client, store.system, current, preset=query.preset, keeper=query.keeper
                    )
                )
            finally:
                store.close()
            if verdict is not None:
                verdict.raise_for_error()  # an authority that cannot be asked is an error
            return _judged(verdict, query, None if current is None else current.version)
        try:
            result = ensure_rotated(
                client,
                store,
                destination,
                query.preset,
                keeper=query.keeper,
                parameters=query.parameters,
                label=query.label,
            )
        finally:
            store.close()
    out = _references(result, query)
    if query.mode == "return" and result.credential is not None:
        out["password"] = result.credential.password
        out["seed"] = _seed(result.credential)
    return out


def _seed(credential: Credential) -> str:
    """The seed's storage form (empty for a binding-only credential, which has none)."""
    return encode_seed(credential.seed) if credential.seed is not None else ""
