"""Keepers: rotation epochs chosen by the user, recorded in the certificate label."""

from __future__ import annotations

import dataclasses

from .._errors import (
    InvalidRequest,
)
from ..model import GenerationParameters

MAX_KEEPER = 100
_MAX_LABEL = 200
_KEEPER_MARK = "keeper="
_KEEPER_SEP = " | "


# --- keepers ------------------------------------------------------------------------------------


def check_keeper(keeper: object) -> str | None:
    """Validate a keeper: ``None``/``""`` (no epoch) or 1-100 printable ASCII characters.

    Raises:
        InvalidRequest: not a string, too long, or a control/non-ASCII character.
    """
    if keeper is None or keeper == "":
        return None
    if not isinstance(keeper, str):
        raise InvalidRequest("keeper must be a string")
    if len(keeper) > MAX_KEEPER:
        raise InvalidRequest(f"keeper is longer than {MAX_KEEPER} characters")
    if not all(0x20 <= ord(c) < 0x7F for c in keeper) or keeper != keeper.strip():
        raise InvalidRequest(
            "keeper may only hold printable ASCII characters, without leading or trailing spaces"
        )
    return keeper


def keeper_label(keeper: str | None, label: str | None = None) -> str | None:
    """The certificate label recording ``keeper`` after the user's ``label``.

    Raises:
        InvalidRequest: the combined label is longer than 200 characters.
    """
    if keeper is None:
        return label or None
    mark = f"{_KEEPER_MARK}{keeper}"
    combined = f"{label}{_KEEPER_SEP}{mark}" if label else mark
    if len(combined) > _MAX_LABEL:
        raise InvalidRequest(f"label and keeper together are longer than {_MAX_LABEL} characters")
    return combined


def keeper_of(label: str | None) -> str | None:
    """The keeper recorded in a certificate label (``None`` if there is none)."""
    if not label:
        return None
    if label.startswith(_KEEPER_MARK):
        return label[len(_KEEPER_MARK) :] or None
    _head, sep, tail = label.rpartition(_KEEPER_SEP + _KEEPER_MARK)
    return tail or None if sep else None


def with_exclusions(params: GenerationParameters, chars: str) -> GenerationParameters:
    """``params`` with ``chars`` added to ``exclude`` (a target's forbidden characters)."""
    extra = "".join(ch for ch in dict.fromkeys(chars) if ch not in params.exclude)
    if not extra:
        return params
    return dataclasses.replace(params, exclude=params.exclude + extra)
