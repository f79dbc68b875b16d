"""A redeem request's items checked: each session (MAC, owner, expiry) and the
item's own fields (commitment, target, label)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime

from passgeni_core import InvalidRequest, PassgeniError, SessionExpired, SessionInvalid, Target
from passgeni_core.client import IssueBody

from ._models import Principal
from ._sessions import SessionClaims, SessionCodec
from ._settings import AuthoritySettings

__all__ = ["Parsed", "parse_all", "parse_redeem"]

_COMMITMENT_RE = re.compile(r"^[A-Za-z0-9_-]{43}$")
# The fields of the wire contract's request body: the parser below checks them by hand
# (the contract's exact messages), the Struct says which they are.
_REDEEM_FIELDS = frozenset(IssueBody.__struct_fields__)

#: A checked item: its session, commitment, target and label.
Parsed = tuple[SessionClaims, str | None, Target | None, str | None]


def _encodable(value: str | None) -> bool:
    # JSON's "\ud800" escape parses to a lone surrogate, which no UTF-8 token can hold.
    if value is None:
        return True
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def parse_redeem(
    codec: SessionCodec,
    settings: AuthoritySettings,
    principal: Principal,
    body: object,
    now: datetime,
) -> Parsed:
    """One redeem item checked: its session (MAC, owner, expiry) and fields."""
    if not isinstance(body, Mapping):
        raise InvalidRequest("each item must be a JSON object")
    unknown = (
        ()
        if body.keys() <= _REDEEM_FIELDS
        else sorted(str(k)[:40] for k in body if k not in _REDEEM_FIELDS)
    )
    if unknown:
        raise InvalidRequest(f"unknown field(s): {', '.join(unknown)}")
    if "generation_session_id" not in body:
        raise InvalidRequest("generation_session_id is required")
    claims = codec.decode(body["generation_session_id"])
    if claims.sub != principal.user_id:
        # Same answer as a forgery: no oracle for other tenants' sessions.
        raise SessionInvalid("generation_session_id was not issued to this caller")
    if now.timestamp() >= claims.exp:
        raise SessionExpired(
            f"the generation session expired {int(now.timestamp() - claims.exp)} s ago "
            f"(sessions last {settings.session_lifetime_seconds} s)"
        )
    if not claims.sc:
        raise SessionInvalid(
            "generation session was opened without a seed commitment; open a new one"
        )
    commitment = body.get("credential_commitment")
    if commitment is not None and claims.sc:
        # A commitment to a finished password would let a chosen one be certified; the
        # certificate is bound to the seed committed when the session was opened.
        raise InvalidRequest(
            "credential_commitment is not accepted for a session opened with a seed "
            "commitment: the certificate proves the generation from that seed"
        )
    if commitment is not None and (
        not isinstance(commitment, str) or not _COMMITMENT_RE.match(commitment)
    ):
        raise InvalidRequest("credential_commitment must be 43 base64url characters")
    target = None if body.get("target") is None else Target.from_dict(body["target"])
    if target is not None and not all(
        _encodable(v)
        for v in (target.system, target.path, target.version, target.address, target.namespace)
    ):
        raise InvalidRequest("target fields must be valid Unicode text (no lone surrogates)")
    label = body.get("label")
    if label is not None and (
        not isinstance(label, str) or not 1 <= len(label) <= 200 or not label.isprintable()
    ):
        raise InvalidRequest("label must be 1-200 printable characters")
    return claims, commitment, target, label


def parse_all(
    codec: SessionCodec,
    settings: AuthoritySettings,
    principal: Principal,
    items: Sequence[object],
    now: datetime,
    batch: bool,
) -> list[Parsed | PassgeniError]:
    """Every item parsed (a batch keeps each item's error in its place)."""
    parsed: list[Parsed | PassgeniError] = []
    for item in items:
        try:
            parsed.append(parse_redeem(codec, settings, principal, item, now))
        except PassgeniError as exc:
            if not batch:
                raise
            parsed.append(exc)
    return parsed
