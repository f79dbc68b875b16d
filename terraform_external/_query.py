"""Parse and validate the Terraform ``query`` (stdin): stdlib + light core modules only.

This module is on the start-up path of every run (a plan with 100 data
sources runs the program 100 times), so it imports nothing heavy: the core's
parameter/preset modules (stdlib + a JSON table) and nothing that pulls in
``requests``, ``jwt`` or a store SDK.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from passgeni_core import GenerationParameters, InvalidParameters, InvalidRequest, parse_store_uri

__all__ = ["KNOWN_KEYS", "MAX_STDIN", "Query", "parse_query"]

#: A query is a handful of short strings; anything bigger is not Terraform talking.
MAX_STDIN = 64 * 1024

Mode = Literal["read", "ensure", "return"]

_BOOL_KEYS = ("upper", "lower", "digits", "special", "exclude_lookalikes")
_INT_KEYS = ("length", "min_upper", "min_lower", "min_digits", "min_special")
_STR_KEYS = ("special_chars", "exclude")
KNOWN_KEYS = frozenset(
    {
        "preset",
        *_BOOL_KEYS,
        *_INT_KEYS,
        *_STR_KEYS,
        "destination",
        "keeper",
        "mode",
        "label",
        "authority_url",
        "timeout",
        "store_options",
    }
)
_INT = re.compile(r"[0-9]{1,6}")
_TRUE = {"true", "1"}
_FALSE = {"false", "0"}
_MAX_KEEPER = 100


@dataclass(frozen=True, kw_only=True)
class Query:
    """A validated query. Holds no secret (the API key only ever comes from the environment)."""

    preset: str
    parameters: GenerationParameters
    destination: str | None
    keeper: str | None
    mode: Mode
    label: str | None
    authority_url: str | None
    timeout: float | None
    store_options: dict[str, str]


def _bad(message: str) -> InvalidRequest:
    return InvalidRequest(message)


def _shown(key: object) -> str:
    text = str(key)
    text = "".join(c if c.isprintable() else "?" for c in text)
    return repr(text if len(text) <= 40 else text[:37] + "...")


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _bad(f"duplicate query key {_shown(key)}")
        out[key] = value
    return out


def decode_stdin(raw: bytes) -> dict[str, str]:
    """stdin → a map of strings, as Terraform's external data source sends it.

    Raises:
        InvalidRequest: not UTF-8, not one JSON object, a non-string value.
    """
    if len(raw) > MAX_STDIN:
        raise _bad(f"the query on stdin is larger than {MAX_STDIN // 1024} KiB")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise _bad("stdin is not UTF-8 text (expected the query as a JSON object)") from None
    if not text.strip():
        raise _bad("stdin is empty (expected the query as a JSON object of strings)")
    try:
        data = json.loads(text, object_pairs_hook=_reject_duplicates)
    except InvalidRequest:
        raise
    except (ValueError, RecursionError) as exc:
        where = (
            f" at line {exc.lineno} column {exc.colno}"
            if isinstance(exc, json.JSONDecodeError)
            else ""
        )
        raise _bad(f"stdin is not valid JSON{where} (expected one object of strings)") from None
    if not isinstance(data, dict):
        raise _bad(f"the query must be a JSON object of strings, got a JSON {_kind(data)}")
    for key, value in data.items():
        if not isinstance(value, str):
            raise _bad(
                f"query value {_shown(key)} must be a string, got a JSON {_kind(value)} "
                "(Terraform's external data source passes strings only)"
            )
    return data


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "string"


def _bool(key: str, value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise InvalidParameters(f'{key} must be "true" or "false"')


def _int(key: str, value: str) -> int:
    text = value.strip()
    if not _INT.fullmatch(text):
        raise InvalidParameters(f"{key} must be a whole number written in decimal digits")
    return int(text)


def _opt(data: Mapping[str, str], key: str) -> str | None:
    value = data.get(key)
    return None if value is None or value == "" else value


def parse_query(data: Mapping[str, str]) -> Query:
    """Validate the query map and build the core objects (no I/O).

    Raises:
        InvalidRequest: unknown keys, a bad mode, keeper, destination shape or timeout.
        UnknownPreset / PresetNotMet / InvalidParameters (and subclasses): bad
            generation options, as :meth:`GenerationParameters.for_preset` says.
    """
    if "api_key" in data:
        raise _bad(
            "api_key is not accepted in the query: query values are stored in the Terraform "
            "state; set PASSGENI_API_KEY in the environment of terraform instead"
        )
    unknown = sorted(k for k in data if k not in KNOWN_KEYS)
    if unknown:
        raise _bad(
            f"unknown query key(s): {', '.join(_shown(k) for k in unknown[:5])} "
            f"(known: {', '.join(sorted(KNOWN_KEYS))})"
        )
    preset = (data.get("preset") or "").strip()
    if not preset:
        raise _bad("query key 'preset' is required (e.g. soc2, pci-dss, nist-800-63b)")
    options: dict[str, Any] = {}
    for key in _BOOL_KEYS:
        if (value := _opt(data, key)) is not None:
            options[key] = _bool(key, value)
    for key in _INT_KEYS:
        if (value := _opt(data, key)) is not None:
            options[key] = _int(key, value)
    for key in _STR_KEYS:
        if (value := _opt(data, key)) is not None:
            options[key] = value
    options.setdefault("exclude", "")
    parameters = GenerationParameters.for_preset(preset, **options)

    destination = _opt(data, "destination")
    if destination is not None:
        # The full grammar, from a light module: no network library is loaded yet.
        parse_store_uri(destination)
    mode_text = _opt(data, "mode")
    if mode_text == "store":
        raise _bad(
            'mode "store" is now mode "ensure", and it must be asked for: it writes '
            "during terraform plan (Terraform reads data sources while planning, so a "
            "speculative plan with a new keeper would rotate the credential); prefer the "
            "passgeni/passgeni provider's passgeni_credential resource, which writes at apply"
        )
    if mode_text is None:
        if destination is None:
            raise _bad(
                'without a destination give mode = "return" (it issues a new certificate '
                "on every run, plan included, and the password lands in the Terraform state), "
                'or a destination to read (mode "read", the default)'
            )
        mode_text = "read"
    if mode_text not in ("read", "ensure", "return"):
        raise _bad(f'mode must be "read", "ensure" or "return", got {_shown(mode_text)}')
    mode: Mode = "read" if mode_text == "read" else "ensure" if mode_text == "ensure" else "return"
    if mode in ("read", "ensure") and destination is None:
        raise _bad(
            f'mode "{mode}" needs a destination (vault://..., aws-sm://..., k8s://...); '
            'without one use mode "return" (the password then lands in the Terraform state)'
        )

    keeper = _opt(data, "keeper")
    if keeper is not None and (
        len(keeper) > _MAX_KEEPER
        or not all(0x20 <= ord(c) < 0x7F for c in keeper)
        or keeper != keeper.strip()
    ):
        raise _bad(
            f"keeper must be at most {_MAX_KEEPER} printable ASCII characters "
            "without leading or trailing spaces"
        )
    label = _opt(data, "label")
    if label is not None and (len(label) > 150 or not label.isprintable()):
        raise _bad("label must be at most 150 printable characters")

    authority_url = _opt(data, "authority_url")
    if (
        authority_url is not None
        and authority_url != "embedded"
        and not re.fullmatch(r"https?://[\x21-\x7e]+", authority_url)
    ):
        raise _bad('authority_url must be an http(s):// URL (or "embedded")')
    timeout: float | None = None
    if (raw_timeout := _opt(data, "timeout")) is not None:
        try:
            timeout = float(raw_timeout)
        except ValueError:
            timeout = -1.0
        if not 0 < timeout <= 600:
            raise _bad("timeout must be a number of seconds between 0 and 600")
    options_text = _opt(data, "store_options")
    store_options = {} if options_text is None else _store_options(options_text)
    if store_options and destination is None:
        raise _bad("store_options needs a destination (they are the destination store's options)")
    return Query(
        preset=parameters_preset(preset),
        parameters=parameters,
        destination=destination,
        keeper=keeper,
        mode=mode,
        label=label,
        authority_url=authority_url,
        timeout=timeout,
        store_options=store_options,
    )


def _store_options(text: str) -> dict[str, str]:
    """``store_options``: a JSON object of strings (``jsonencode({kms_key_id = "..."})``; the
    query itself can only hold strings). The backend checks the names and values."""
    try:
        data = json.loads(text, object_pairs_hook=_reject_duplicates)
    except InvalidRequest:
        raise
    except (ValueError, RecursionError):
        data = None
    if not isinstance(data, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in data.items()
    ):
        raise _bad(
            "store_options must be a JSON object of strings, e.g. "
            'store_options = jsonencode({ kms_key_id = "alias/app" })'
        )
    return data


def parameters_preset(preset: str) -> str:
    """The canonical preset id (``for_preset`` has already checked it exists)."""
    from passgeni_core import get_preset

    return get_preset(preset).id
