"""The issuance hot path's hand-rolled encoders agree with the general ones they replace."""

from __future__ import annotations

import base64
import json
import re
from datetime import UTC, datetime

import pytest
from hypothesis import given, strategies as st

from passgeni_authority._events import detail_json as _detail_json
from passgeni_authority._hot import dt_for
from passgeni_authority._ids import b32 as _b32
from passgeni_authority._sessions import SessionClaims, SessionCodec
from passgeni_core import SessionInvalid

_IDS = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._@+-",
    min_size=1,
    max_size=64,
)


@given(st.dictionaries(st.text(max_size=20), st.text(max_size=40) | st.integers(), max_size=4))
def test_event_detail_is_the_json_of_the_mapping(detail: dict[str, object]) -> None:
    if not detail:
        return  # events without detail store NULL; the helper is never called
    assert json.loads(_detail_json(detail)) == detail


def test_b32_ids_are_lowercase_base32_of_the_requested_length() -> None:
    ids = {_b32(15) for _ in range(2000)}
    assert len(ids) == 2000  # 120 random bits each
    for value in ids:
        assert re.fullmatch(r"[a-z2-7]{24}", value)
        # The same alphabet and bit order as base64.b32encode.
        assert len(base64.b32decode(value.upper())) == 15


@given(st.datetimes(timezones=st.just(UTC)))
def test_sqlite_timestamps_are_what_sqlalchemy_stores(value: datetime) -> None:
    # SQLAlchemy's SQLite DATETIME storage format (the columns' UTCDateTime impl).
    v = value.astimezone(UTC)
    expected = (
        f"{v.year:04d}-{v.month:02d}-{v.day:02d} "
        f"{v.hour:02d}:{v.minute:02d}:{v.second:02d}.{v.microsecond:06d}"
    )
    assert dt_for("sqlite", value) == expected


@given(jti=_IDS, sub=_IDS, rq=_IDS, iat=st.integers(0, 2**40), life=st.integers(1, 3600))
def test_session_tokens_round_trip(jti: str, sub: str, rq: str, iat: int, life: int) -> None:
    codec = SessionCodec(b"k" * 32)
    claims = SessionClaims(jti=jti, sub=sub, iat=iat, exp=iat + life, rq=rq)
    token = codec.encode(claims)
    assert codec.decode(token) == claims
    payload = token.split(".")[1]
    assert json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))) == {
        "jti": jti,
        "sub": sub,
        "iat": iat,
        "exp": iat + life,
        "rq": rq,
    }


@pytest.mark.parametrize("bad", ['a"b', "a\\b", "a b", "", "x" * 65, "é"])
def test_session_claims_that_would_need_escaping_are_refused(bad: str) -> None:
    codec = SessionCodec(b"k" * 32)
    with pytest.raises(ValueError):
        codec.encode(SessionClaims(jti=bad, sub="u", iat=1, exp=2, rq="r"))
    with pytest.raises(ValueError):
        codec.encode(SessionClaims(jti="j", sub=bad, iat=1, exp=2, rq="r"))


def test_a_token_signed_with_another_secret_is_invalid() -> None:
    token = SessionCodec(b"a" * 32).encode(SessionClaims(jti="j", sub="u", iat=1, exp=2, rq="r"))
    with pytest.raises(SessionInvalid):
        SessionCodec(b"b" * 32).decode(token)


def test_ordered_ids_lead_with_the_millisecond_then_stay_unguessable() -> None:
    import time

    from passgeni_authority._ids import ordered_id as _ordered_id

    before = time.time_ns() // 1_000_000
    ids = [_ordered_id() for _ in range(2000)]
    after = time.time_ns() // 1_000_000
    assert len(set(ids)) == 2000
    for value in ids:
        assert re.fullmatch(r"[a-z2-7]{24}", value)  # same shape as the random ids
        raw = base64.b32decode(value.upper())
        assert before <= int.from_bytes(raw[:6], "big") <= after
    # 72 random bits after the time: across ids made in one millisecond the
    # tails differ in about half their bits.
    tails = [int.from_bytes(base64.b32decode(v.upper())[6:], "big") for v in ids]
    assert len(set(tails)) == 2000
    ones = sum(bin(t).count("1") for t in tails) / (72 * len(tails))
    assert 0.45 < ones < 0.55
