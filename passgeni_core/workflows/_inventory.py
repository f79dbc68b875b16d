"""Bulk rotation inventories: the YAML/JSON document naming the credentials to rotate."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .._errors import (
    InvalidRequest,
    PassgeniError,
)
from ..model import GenerationParameters, get_preset
from ..stores import StoreURI, parse_store_uri
from ._keepers import check_keeper

# --- bulk rotation inventory --------------------------------------------------------------------

_ENTRY_KEYS = frozenset(
    {
        "name",
        "destination",
        "preset",
        "keeper",
        "label",
        "length",
        "exclude",
        "special_chars",
        "exclude_lookalikes",
        "postgres",
        "target",
    }
)
_TOP_KEYS = frozenset({"epoch", "defaults", "credentials"})
_PARAM_KEYS = ("length", "exclude", "special_chars", "exclude_lookalikes")


@dataclass(frozen=True, kw_only=True, repr=False)
class InventoryEntry:
    """One credential of a bulk rotation. ``repr`` shows no target option (may hold a password)."""

    name: str
    destination: StoreURI
    preset: str
    keeper: str | None
    label: str | None = None
    parameters: GenerationParameters
    target_kind: str | None = None
    target_options: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def __repr__(self) -> str:
        return (
            f"InventoryEntry(name={self.name!r}, destination={str(self.destination)!r}, "
            f"preset={self.preset!r}, keeper={self.keeper!r}, target={self.target_kind!r})"
        )


def _entry_error(where: str, message: str) -> InvalidRequest:
    return InvalidRequest(f"inventory {where}: {message}")


def parse_inventory(data: object, *, epoch: str | None = None) -> list[InventoryEntry]:
    """Validate a bulk-rotation inventory (already parsed from YAML or JSON).

    Format::

        epoch: "2026-q4"              # the keeper of every entry (``--epoch`` overrides)
        defaults: {preset: soc2, length: 24, exclude: "@/"}
        credentials:
          - name: billing-db          # optional; defaults to the destination
            destination: vault://secret/prod/billing#password
            preset: pci-dss           # else defaults.preset
            keeper: "2026-q4-b"       # optional per-entry override of the epoch
            postgres:                 # optional: apply the password to this role
              conninfo: "host=db1 port=5432 dbname=billing user=admin"
              role: billing_app
          - destination: aws-sm://prod/api#token
            target: {type: postgresql, ...}   # the general form (passgeni.targets kinds)

    Raises:
        InvalidRequest / InvalidStoreURI / InvalidParameters: the message names
            the entry (by index and name) and the problem.
    """
    if not isinstance(data, dict):
        raise InvalidRequest("the inventory must be a mapping with a 'credentials' list")
    unknown = sorted(str(k) for k in data if k not in _TOP_KEYS)
    if unknown:
        raise InvalidRequest(
            f"inventory: unknown key(s) {', '.join(unknown[:5])} (known: credentials, "
            "defaults, epoch)"
        )
    defaults = data.get("defaults") or {}
    if not isinstance(defaults, dict):
        raise InvalidRequest("inventory: 'defaults' must be a mapping")
    bad_defaults = sorted(str(k) for k in defaults if k not in _ENTRY_KEYS - {"name"})
    if bad_defaults:
        raise InvalidRequest(f"inventory defaults: unknown key(s) {', '.join(bad_defaults)}")
    raw_epoch = epoch if epoch is not None else data.get("epoch")
    if raw_epoch is not None and not isinstance(raw_epoch, str | int):
        raise InvalidRequest("inventory: 'epoch' must be a string")
    base_keeper = check_keeper(None if raw_epoch is None else str(raw_epoch))
    items = data.get("credentials")
    if not isinstance(items, list) or not items:
        raise InvalidRequest("inventory: 'credentials' must be a non-empty list")
    entries: list[InventoryEntry] = []
    seen_names: set[str] = set()
    seen_uris: set[str] = set()
    for index, item in enumerate(items, 1):
        where = f"entry {index}"
        if not isinstance(item, dict):
            raise _entry_error(where, "must be a mapping")
        merged = {**defaults, **item}
        unknown = sorted(str(k) for k in item if k not in _ENTRY_KEYS)
        if unknown:
            raise _entry_error(
                where,
                f"unknown key(s) {', '.join(unknown[:5])} (known: {', '.join(sorted(_ENTRY_KEYS))})",
            )
        destination = merged.get("destination")
        if not isinstance(destination, str) or not destination:
            raise _entry_error(where, "'destination' (a store URI) is required")
        try:
            uri = parse_store_uri(destination)
        except PassgeniError as exc:
            raise type(exc)(f"inventory {where}: {exc.message}") from None
        name = merged.get("name", str(uri))
        if not isinstance(name, str) or not name:
            raise _entry_error(where, "'name' must be a non-empty string")
        where = f"entry {index} ({name})"
        if name in seen_names or str(uri) in seen_uris:
            raise _entry_error(where, "duplicate name or destination")
        seen_names.add(name)
        seen_uris.add(str(uri))
        preset = merged.get("preset")
        if not isinstance(preset, str) or not preset:
            raise _entry_error(where, "'preset' is required (here or in defaults)")
        keeper_value = item.get("keeper", base_keeper)
        keeper = check_keeper(None if keeper_value is None else str(keeper_value))
        label = merged.get("label")
        if label is not None and not isinstance(label, str):
            raise _entry_error(where, "'label' must be a string")
        options = {k: merged[k] for k in _PARAM_KEYS if merged.get(k) is not None}
        try:
            params = GenerationParameters.for_preset(preset, **options)
            preset_id = get_preset(preset).id
        except TypeError:
            raise _entry_error(where, "a generation option has the wrong type") from None
        except PassgeniError as exc:
            raise type(exc)(f"inventory {where}: {exc.message}") from None
        kind: str | None = None
        target_options: dict[str, Any] = {}
        if "postgres" in item and "target" in item:
            raise _entry_error(where, "give 'postgres' or 'target', not both")
        if item.get("postgres") is not None:
            if not isinstance(item["postgres"], dict):
                raise _entry_error(where, "'postgres' must be a mapping (conninfo, role...)")
            kind, target_options = "postgresql", dict(item["postgres"])
        elif item.get("target") is not None:
            spec = item["target"]
            if not isinstance(spec, dict) or not isinstance(spec.get("type"), str):
                raise _entry_error(where, "'target' must be a mapping with a 'type'")
            kind = spec["type"]
            target_options = {k: v for k, v in spec.items() if k != "type"}
        entries.append(
            InventoryEntry(
                name=name,
                destination=uri,
                preset=preset_id,
                keeper=keeper,
                label=label,
                parameters=params,
                target_kind=kind,
                target_options=target_options,
            )
        )
    return entries
