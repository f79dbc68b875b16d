"""The certificate page's rows that describe the certificate itself: the standards
by their human names (with the mapping's citation and honesty note), the certified
parameters in words, and the entropy beside the standard's floor.

Values are put into words here, never shown as Python literals (``True``, ``None``)
or as empty rows; a claim this code does not know (a later mapping's) is shown in
words rather than dropped.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from passgeni_core import PassgeniError, UnknownPreset
from passgeni_core.model import (
    CLASS_NAMES,
    LOOKALIKES,
    MAPPING_VERSION,
    GenerationParameters,
    Preset,
    breach_list,
    get_preset,
)

from ._models import CertificateRecord

__all__ = [
    "Row",
    "StandardEntry",
    "entropy_rows",
    "humanize",
    "parameter_rows",
    "standard_entries",
    "standard_entry",
    "words",
]


@dataclass(frozen=True)
class Row:
    """One labelled line of the page; ``code`` values are shown as typed (ids, characters)."""

    label: str
    value: str
    code: bool = False


@dataclass(frozen=True)
class StandardEntry:
    """A standard as the mapping names it. ``known`` is false for a name this
    authority's table does not hold (a later mapping's): then only the name is shown."""

    claim_id: str
    name: str
    title: str
    citation: str
    honesty_note: str
    known: bool


# -- standards ------------------------------------------------------------------------


def _preset(name: str) -> Preset | None:
    try:
        return get_preset(name)
    except UnknownPreset:
        return None


def standard_entry(name: str) -> StandardEntry:
    """A standard by claim id (``SOC2``) or, in older certificates, preset id (``soc2``)."""
    preset = _preset(name)
    if preset is None:
        return StandardEntry(
            claim_id=str(name),
            name=str(name),
            title="",
            citation="",
            honesty_note="",
            known=False,
        )
    return StandardEntry(
        claim_id=preset.claim_id,
        name=preset.standard,
        title=preset.title,
        citation=preset.citation,
        honesty_note=preset.honesty_note,
        known=True,
    )


def standard_entries(names: tuple[str, ...] | list[str]) -> tuple[StandardEntry, ...]:
    """The standards met, in the certificate's order, each once (a name and its
    older preset id are the same standard)."""
    seen: set[str] = set()
    out: list[StandardEntry] = []
    for name in names:
        entry = standard_entry(name)
        if entry.claim_id not in seen:
            seen.add(entry.claim_id)
            out.append(entry)
    return tuple(out)


# -- parameters -----------------------------------------------------------------------

_CLASS_LABELS = {
    "upper": "Uppercase letters",
    "lower": "Lowercase letters",
    "digits": "Digits",
    "special": "Special characters",
}
_KNOWN_PARAMETERS = frozenset(
    {"length", "min_classes_present", "special_chars", "exclude", "exclude_lookalikes"}
    | {"breach_check"}
    | set(CLASS_NAMES)
    | {f"min_{name}" for name in CLASS_NAMES}
)


def words(value: object) -> str:
    """A claim value in words: yes/no, not ``True``/``False``; lists joined."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ", ".join(words(v) for v in value) or "none"
    if isinstance(value, Mapping):
        return "; ".join(f"{humanize(k)}: {words(v)}" for k, v in value.items()) or "none"
    return str(value)


def humanize(key: object) -> str:
    """A claim's key as a label (``kernel_source`` -> ``Kernel source``)."""
    text = str(key).replace("_", " ").strip()
    return text[:1].upper() + text[1:]


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _class_row(name: str, p: Mapping[str, Any], pool: Mapping[str, str] | None) -> Row:
    minimum = p.get(f"min_{name}", 0)
    if p.get(name) is False:
        return Row(_CLASS_LABELS[name], "not used")
    need = (
        f"required, at least {minimum}"
        if isinstance(minimum, int) and minimum >= 1
        else "allowed, not required"
    )
    if pool is not None:
        chars = pool.get(name, "")
        if not chars:
            return Row(_CLASS_LABELS[name], f"{need}; none left after the exclusions")
        if name == "special" and p.get("special_chars"):
            need += f" (only these {len(chars)}: {chars})"
        else:
            need += f" ({_plural(len(chars), 'character')})"
    return Row(_CLASS_LABELS[name], need)


def _breach_row(enabled: object, recorded: Mapping[str, Any] | None) -> Row:
    if enabled is not True:
        return Row("Breach-list check", "no")
    if recorded:
        name, entries = str(recorded.get("list", "")), recorded.get("entries")
    else:
        # The list the generator definition rejects from (docs/generator.md).
        shipped = breach_list()
        name, entries = shipped.name, len(shipped)
    source = name.split("/")[0] or "shipped"
    size = f", {entries:,} entries" if isinstance(entries, int) else ""
    return Row("Breach-list check", f"yes ({source} list{size})")


def parameter_rows(
    parameters: Mapping[str, Any], *, breach: Mapping[str, Any] | None = None
) -> tuple[Row, ...]:
    """The certified parameters as labelled rows (``breach``: the certificate's
    ``breach_check`` record, when it carries one)."""
    p = dict(parameters)
    try:
        known = {k: v for k, v in p.items() if k in _KNOWN_PARAMETERS}
        pool: dict[str, str] | None = GenerationParameters.from_dict(known).pool().classes
    except PassgeniError:  # parameters of a later mapping: shown without the pool
        pool = None
    rows: list[Row] = []
    if isinstance(p.get("length"), int):
        rows.append(Row("Length", _plural(p["length"], "character")))
    rows.extend(_class_row(name, p, pool) for name in CLASS_NAMES)
    present = p.get("min_classes_present", 0)
    rows.append(
        Row(
            "Character classes in every password",
            f"at least {present} of the 4" if isinstance(present, int) and present else "no rule",
        )
    )
    excluded = p.get("exclude") or ""
    rows.append(Row("Excluded characters", str(excluded) if excluded else "none", bool(excluded)))
    rows.append(
        Row(
            "Look-alike characters",
            f"excluded ({LOOKALIKES})" if p.get("exclude_lookalikes") is True else "allowed",
        )
    )
    if pool is not None:
        rows.append(Row("Character pool", _plural(sum(map(len, pool.values())), "character")))
    rows.append(_breach_row(p.get("breach_check"), breach))
    # A parameter of a later mapping: shown in words, never dropped silently.
    for key in sorted(set(p) - _KNOWN_PARAMETERS):
        if p[key] is not None and p[key] != "":
            rows.append(Row(humanize(key), words(p[key])))
    return tuple(rows)


def entropy_rows(record: CertificateRecord) -> tuple[Row, ...]:
    """The exact entropy, the naive figure beside it, and the floor of the standard."""
    rows = [Row("Exact entropy", f"{record.entropy_bits:g} bits")]
    if record.naive_entropy_bits is not None:
        rows.append(
            Row(
                "Naive estimate",
                f"{record.naive_entropy_bits:g} bits (length x log2 of the pool; "
                "the exact figure counts only the passwords the rules allow)",
            )
        )
    preset = _preset(record.compliance_standard)
    if preset is not None:
        floor = preset.entropy_floor
        rows.append(
            Row(
                f"Floor of {preset.standard}",
                f"{floor.bits:g} bits ({floor.describe()}, mapping {MAPPING_VERSION})",
            )
        )
    return tuple(rows)
