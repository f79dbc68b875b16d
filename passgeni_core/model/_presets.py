"""Compliance presets: the standards table, kept as data in ``data/presets.json``.

The table is PassGeni's published mapping of standards to password
requirements, with a citation and an honesty note per row saying where the
mapping differs from the standard's own text. ``MAPPING_VERSION`` goes into
every certificate so an auditor knows which table was applied.

Each row has two names: its ``id`` (``soc2``), the preset id accepted as input
everywhere, and its ``claim_id`` (``SOC2``), how certificates name the standard
in ``compliance_standard`` and ``standards_met`` (the identifiers of the
published verification recipe). Certificates issued before the claim ids carry
preset ids, so whatever reads a certificate compares through
:func:`same_standard` / :func:`preset_id_for`, never with ``==``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from .._errors import UnknownPreset

__all__ = [
    "CLASS_NAMES",
    "DEFAULT_POOL",
    "LOOKALIKES",
    "MAPPING_VERSION",
    "EntropyFloor",
    "PoolMinimums",
    "Preset",
    "claim_id_for",
    "get_preset",
    "list_presets",
    "preset_id_for",
    "same_standard",
]

#: The four character classes, in the order used everywhere.
CLASS_NAMES: tuple[str, ...] = ("upper", "lower", "digits", "special")


@dataclass(frozen=True, kw_only=True)
class EntropyFloor:
    """The least exact entropy a preset accepts, with the figure it is derived from.

    The floor is the naive entropy of ``length`` characters over a ``pool``-character
    alphabet (the preset's minimum length over A-Z, a-z, 0-9). The parameters' *exact*
    entropy is compared with it, so shrinking the pool or leaning on composition rules
    cannot buy a certificate that a plain alphanumeric password of the minimum length
    would not earn.
    """

    bits: float
    length: int
    pool: int
    basis: str

    def describe(self) -> str:
        return f"{self.length} characters over a {self.pool}-character pool"

    def to_dict(self) -> dict[str, Any]:
        return {"bits": self.bits, "length": self.length, "pool": self.pool, "basis": self.basis}


@dataclass(frozen=True, kw_only=True)
class PoolMinimums:
    """The fewest distinct characters each allowed class, and the whole pool, may keep."""

    upper: int
    lower: int
    digits: int
    special: int
    total: int
    basis: str

    def of(self, name: str) -> int:
        """The minimum for class ``name`` (one of ``CLASS_NAMES``)."""
        value: int = getattr(self, name)
        return value

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {name: self.of(name) for name in CLASS_NAMES}
        out["total"] = self.total
        out["basis"] = self.basis
        return out


@dataclass(frozen=True, kw_only=True)
class Preset:
    """One row of the standards table."""

    id: str
    #: The standard's name in certificates (``compliance_standard``, ``standards_met``).
    claim_id: str
    standard: str
    title: str
    min_length: int
    #: Classes that must each appear at least once.
    required_classes: tuple[str, ...]
    #: At least this many distinct classes must appear ("3 of the 4").
    min_classes_present: int
    min_entropy_bits: float
    #: Exact entropy below this is refused (see :class:`EntropyFloor`).
    entropy_floor: EntropyFloor
    #: Distinct characters each allowed class and the pool must keep.
    min_pool: PoolMinimums
    #: The password must be checked against a common/breached password list.
    breach_check: bool
    #: The claim depends on the entropy source running in FIPS mode.
    requires_fips_entropy: bool
    default_length: int
    citation: str
    honesty_note: str

    def describe(self, *, ge: str = ">=") -> str:
        """One-line human summary of the requirement; ``ge`` spells "at least" (the
        documents, in Unicode, pass ``"≥"``; terminals keep ASCII)."""
        parts = [f"{self.min_length}+ chars"]
        if self.required_classes:
            if len(self.required_classes) == len(CLASS_NAMES):
                parts.append("all 4 classes")
            else:
                parts.append(" + ".join(self.required_classes))
        elif self.min_classes_present:
            parts.append(f"at least {self.min_classes_present} of 4 classes")
        else:
            parts.append("no composition rules")
        if self.min_entropy_bits:
            parts.append(f"{ge} {self.min_entropy_bits:g} bits entropy")
        parts.append(f"{ge} {self.entropy_floor.bits:g} bits exact entropy")
        if self.breach_check:
            parts.append("breach-list check")
        if self.requires_fips_entropy:
            parts.append("FIPS entropy source")
        return ", ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "claim_id": self.claim_id,
            "standard": self.standard,
            "title": self.title,
            "min_length": self.min_length,
            "required_classes": list(self.required_classes),
            "min_classes_present": self.min_classes_present,
            "min_entropy_bits": self.min_entropy_bits,
            "entropy_floor": self.entropy_floor.to_dict(),
            "min_pool": self.min_pool.to_dict(),
            "breach_check": self.breach_check,
            "requires_fips_entropy": self.requires_fips_entropy,
            "default_length": self.default_length,
            "citation": self.citation,
            "honesty_note": self.honesty_note,
            "summary": self.describe(),
        }


@cache
def _table() -> dict[str, Any]:
    text = resources.files("passgeni_core").joinpath("data/presets.json").read_text("utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def _floor(row: dict[str, Any]) -> EntropyFloor:
    return EntropyFloor(
        bits=float(row["bits"]),
        length=int(row["length"]),
        pool=int(row["pool"]),
        basis=str(row["basis"]),
    )


def _pool_minimums(row: dict[str, Any]) -> PoolMinimums:
    return PoolMinimums(
        upper=int(row["upper"]),
        lower=int(row["lower"]),
        digits=int(row["digits"]),
        special=int(row["special"]),
        total=int(row["total"]),
        basis=str(row["basis"]),
    )


@cache
def _presets() -> dict[str, Preset]:
    out: dict[str, Preset] = {}
    for row in _table()["presets"]:
        preset = Preset(
            id=row["id"],
            claim_id=row["claim_id"],
            standard=row["standard"],
            title=row["title"],
            min_length=int(row["min_length"]),
            required_classes=tuple(row["required_classes"]),
            min_classes_present=int(row["min_classes_present"]),
            min_entropy_bits=float(row["min_entropy_bits"]),
            entropy_floor=_floor(row["entropy_floor"]),
            min_pool=_pool_minimums(row["min_pool"]),
            breach_check=bool(row["breach_check"]),
            requires_fips_entropy=bool(row["requires_fips_entropy"]),
            default_length=int(row["default_length"]),
            citation=row["citation"],
            honesty_note=row["honesty_note"],
        )
        out[preset.id] = preset
    return out


MAPPING_VERSION: str = _table()["mapping_version"]
DEFAULT_POOL: dict[str, str] = dict(_table()["default_pool"])
LOOKALIKES: str = _table()["lookalikes"]


def list_presets() -> list[Preset]:
    """Every preset, in the table's order."""
    return list(_presets().values())


@cache
def _by_name() -> dict[str, Preset]:
    out = {p.claim_id: p for p in _presets().values()}
    out.update(_presets())
    return out


def get_preset(preset_id: str) -> Preset:
    """The preset with this id, or with this claim id (``SOC2`` as ``soc2``).

    Raises:
        UnknownPreset: no such preset (the message lists the valid ids).
    """
    try:
        return _by_name()[preset_id]
    except (KeyError, TypeError):
        valid = ", ".join(_presets())
        shown = preset_id if isinstance(preset_id, str) else type(preset_id).__name__
        raise UnknownPreset(f"unknown preset {shown[:64]!r}; valid presets: {valid}") from None


def preset_id_for(standard: str) -> str:
    """The preset id a certificate's standard names, in either form; others unchanged.

    ``preset_id_for("HIPAA") == preset_id_for("hipaa") == "hipaa"``; a name no
    preset has (a later mapping's standard) is returned as it is, so it only
    ever equals itself.
    """
    found = _by_name().get(standard)
    return found.id if found is not None else standard


def claim_id_for(standard: str) -> str:
    """The claim id for a preset id or claim id (``"soc2"`` -> ``"SOC2"``); others unchanged."""
    found = _by_name().get(standard)
    return found.claim_id if found is not None else standard


def same_standard(a: str, b: str) -> bool:
    """Whether two names (preset ids or claim ids) are the same standard."""
    return preset_id_for(a) == preset_id_for(b)
