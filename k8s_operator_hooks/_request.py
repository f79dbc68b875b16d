"""What a Secret asks the operator for, read from its annotations (see the operator's doc).

No kopf and no API calls here: the annotations of a Secret's metadata in, a
:class:`SecretRequest` (or an :class:`InvalidRequest` naming what is wrong) out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from passgeni_core import InvalidParameters, InvalidStoreURI, get_preset, parse_store_uri
from passgeni_core.stores import DEFAULT_KEY

__all__ = [
    "KEYS_ANNOTATION",
    "PRESET_ANNOTATION",
    "ROTATE_ANNOTATION",
    "InvalidRequest",
    "SecretRequest",
    "parse_request",
]

PRESET_ANNOTATION = "passgeni.ai/preset"
KEYS_ANNOTATION = "passgeni.ai/keys"
ROTATE_ANNOTATION = "passgeni.ai/rotate"
_ROTATE_ALL = frozenset({"", "true", "yes", "1", "all", "now"})


class InvalidRequest(Exception):
    """The annotations ask for something impossible: a permanent failure, ``reason`` for the
    Warning event."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class SecretRequest:
    """What one Secret's annotations ask for."""

    namespace: str
    name: str
    preset: str
    keys: tuple[str, ...]
    rotate_keys: tuple[str, ...]
    rotate_value: str | None


def parse_request(body: Mapping[str, Any]) -> SecretRequest:
    """The Secret's annotations as a request; InvalidRequest when they are invalid."""
    meta = body.get("metadata") or {}
    namespace, name = str(meta.get("namespace") or ""), str(meta.get("name") or "")
    annotations = meta.get("annotations") or {}
    raw_preset = str(annotations.get(PRESET_ANNOTATION) or "").strip()
    try:
        preset = get_preset(raw_preset).id
    except InvalidParameters as exc:
        raise InvalidRequest("InvalidPreset", f"{PRESET_ANNOTATION}: {exc.message}") from None
    raw_keys = annotations.get(KEYS_ANNOTATION)
    keys = (
        tuple(dict.fromkeys(k.strip() for k in str(raw_keys).split(",") if k.strip()))
        if raw_keys is not None
        else (DEFAULT_KEY,)
    )
    if not keys:
        raise InvalidRequest("InvalidKeys", f"{KEYS_ANNOTATION} names no key")
    for key in keys:
        try:
            parse_store_uri(f"k8s://{namespace}/{name}#{key}")
        except InvalidStoreURI as exc:
            raise InvalidRequest("InvalidKeys", f"{KEYS_ANNOTATION}: {exc.message}") from None
    rotate_value = annotations.get(ROTATE_ANNOTATION)
    rotate_keys: tuple[str, ...] = ()
    if rotate_value is not None:
        text = str(rotate_value).strip()
        if text.lower() in _ROTATE_ALL:
            rotate_keys = keys
        else:
            wanted = tuple(dict.fromkeys(k.strip() for k in text.split(",") if k.strip()))
            unknown = [k for k in wanted if k not in keys]
            if unknown:
                shown = ", ".join(k[:40] for k in unknown[:5])
                raise InvalidRequest(
                    "InvalidRotate",
                    f"{ROTATE_ANNOTATION} names keys this Secret does not manage: {shown} "
                    f"(managed: {', '.join(keys)}; use 'true' for all)",
                )
            rotate_keys = wanted
        rotate_value = text
    return SecretRequest(namespace, name, preset, keys, rotate_keys, rotate_value)
