"""Generation parameters: what a password must look like, validated strictly.

Parameters are public (they go into the certificate); the password never is.
``GenerationParameters.from_dict`` is the single parser for untrusted input
(HTTP bodies, Terraform queries, Ansible options), so every adapter rejects
the same things with the same messages.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .._errors import ConflictingParameters, InvalidParameters, LengthOutOfRange, PresetNotMet
from ._entropy import exact_entropy_bits
from ._presets import CLASS_NAMES, DEFAULT_POOL, LOOKALIKES, Preset, get_preset

__all__ = ["MAX_LENGTH", "MIN_LENGTH", "CharacterPool", "GenerationParameters"]

MIN_LENGTH = 1
#: Far beyond any system's password field (1,600+ bits); short enough that exact
#: entropy counting and generation stay instant.
MAX_LENGTH = 256

_PRINTABLE = frozenset(chr(c) for c in range(0x21, 0x7F))
_DEFAULT_SPECIAL = DEFAULT_POOL["special"]


def _describe_char(ch: str) -> str:
    if len(ch) == 1 and ch in _PRINTABLE:
        return repr(ch)
    return f"U+{ord(ch):04X}" if len(ch) == 1 else repr(ch)


def _check_charset(name: str, chars: str) -> None:
    for ch in chars:
        if ch not in _PRINTABLE:
            raise InvalidParameters(
                f"{name} contains {_describe_char(ch)}: only printable ASCII characters "
                "(U+0021..U+007E, no space) are allowed"
            )


@dataclass(frozen=True)
class CharacterPool:
    """The concrete characters of each enabled class, after exclusions."""

    classes: dict[str, str] = field(default_factory=dict)

    @property
    def alphabet(self) -> str:
        return "".join(self.classes.values())

    @property
    def size(self) -> int:
        return len(self.alphabet)

    def sizes(self) -> list[int]:
        return [len(chars) for chars in self.classes.values()]


@dataclass(frozen=True, kw_only=True)
class GenerationParameters:
    """How to generate one password.

    A class is *allowed* when enabled; it is *required* when its minimum is at
    least 1. ``min_classes_present`` asks for at least that many distinct
    enabled classes in every password (PCI-DSS's "3 of the 4").
    """

    length: int
    upper: bool = True
    lower: bool = True
    digits: bool = True
    special: bool = True
    min_upper: int = 0
    min_lower: int = 0
    min_digits: int = 0
    min_special: int = 0
    min_classes_present: int = 0
    #: Replaces the default 32 ASCII specials when set.
    special_chars: str | None = None
    #: Characters never to use (databases and URLs reject ``@ / " ' \\ :``).
    exclude: str = ""
    exclude_lookalikes: bool = False
    #: Reject any password found on the shipped common/breached password list.
    breach_check: bool = True

    def __post_init__(self) -> None:
        self._validate()

    # -- construction -------------------------------------------------------

    @classmethod
    def for_preset(
        cls,
        preset: str | Preset,
        *,
        length: int | None = None,
        upper: bool | None = None,
        lower: bool | None = None,
        digits: bool | None = None,
        special: bool | None = None,
        min_upper: int | None = None,
        min_lower: int | None = None,
        min_digits: int | None = None,
        min_special: int | None = None,
        special_chars: str | None = None,
        exclude: str = "",
        exclude_lookalikes: bool = False,
    ) -> GenerationParameters:
        """Parameters that meet ``preset``, with the caller's adjustments.

        Raises:
            UnknownPreset: ``preset`` is not a known id.
            PresetNotMet: the adjustments make the preset unreachable (too
                short, a required class disabled or fully excluded, the exact
                entropy under the preset's floor, a class or the pool shrunk
                under its minimum, ...).
            InvalidParameters / ConflictingParameters / LengthOutOfRange:
                the adjusted parameters are invalid on their own.
        """
        p = get_preset(preset) if isinstance(preset, str) else preset
        enabled = {"upper": upper, "lower": lower, "digits": digits, "special": special}
        mins = {
            "upper": min_upper,
            "lower": min_lower,
            "digits": min_digits,
            "special": min_special,
        }
        want_length = p.default_length if length is None else length
        if (
            isinstance(want_length, int)
            and not isinstance(want_length, bool)
            and MIN_LENGTH <= want_length < p.min_length
        ):
            raise PresetNotMet(
                f"preset {p.id} requires at least {p.min_length} characters, "
                f"length {want_length} was requested"
            )
        for name in p.required_classes:
            if enabled[name] is False:
                raise PresetNotMet(
                    f"preset {p.id} requires {name} characters, but {name} is disabled"
                )
            if mins[name] is None or mins[name] == 0:
                mins[name] = 1
        kwargs: dict[str, Any] = {
            "length": want_length,
            "min_classes_present": p.min_classes_present,
            "special_chars": special_chars,
            "exclude": exclude,
            "exclude_lookalikes": exclude_lookalikes,
            "breach_check": True,
        }
        for name in CLASS_NAMES:
            kwargs[name] = True if enabled[name] is None else enabled[name]
            kwargs[f"min_{name}"] = 0 if mins[name] is None else mins[name]
        try:
            params = cls(**kwargs)
        except ConflictingParameters as exc:
            if p.required_classes or p.min_classes_present:
                raise PresetNotMet(f"preset {p.id} cannot be met: {exc.message}") from None
            raise
        if not params.meets(p, fips_mode=True):
            raise PresetNotMet(
                f"preset {p.id} cannot be met with these parameters: {params.shortfall(p)}"
            )
        return params

    @classmethod
    def from_dict(cls, data: object) -> GenerationParameters:
        """Parse untrusted input strictly: exact types, no unknown fields.

        Raises:
            InvalidParameters: not an object, an unknown field, a wrong type.
            LengthOutOfRange / ConflictingParameters: as the constructor.
        """
        if not isinstance(data, dict):
            raise InvalidParameters("parameters must be a JSON object")
        known = {f for f in cls.__dataclass_fields__}
        unknown = sorted(str(k)[:40] for k in data if k not in known)
        if unknown:
            raise InvalidParameters(f"unknown parameter(s): {', '.join(unknown)}")
        if "length" not in data:
            raise InvalidParameters("parameter 'length' is required")
        kwargs: dict[str, Any] = {}
        for name, value in data.items():
            kwargs[name] = value
        return cls(**kwargs)

    def to_dict(self) -> dict[str, Any]:
        """The public, canonical description that goes into certificates."""
        return {
            "length": self.length,
            "upper": self.upper,
            "lower": self.lower,
            "digits": self.digits,
            "special": self.special,
            "min_upper": self.min_upper,
            "min_lower": self.min_lower,
            "min_digits": self.min_digits,
            "min_special": self.min_special,
            "min_classes_present": self.min_classes_present,
            "special_chars": self.special_chars,
            "exclude": self.exclude,
            "exclude_lookalikes": self.exclude_lookalikes,
            "breach_check": self.breach_check,
        }

    # -- derived ------------------------------------------------------------

    def enabled(self, name: str) -> bool:
        return bool(getattr(self, name))

    def minimum(self, name: str) -> int:
        return int(getattr(self, f"min_{name}"))

    def pool(self) -> CharacterPool:
        """The characters of each enabled, non-empty class after exclusions."""
        excluded = set(self.exclude)
        if self.exclude_lookalikes:
            excluded |= set(LOOKALIKES)
        classes: dict[str, str] = {}
        for name in CLASS_NAMES:
            if not self.enabled(name):
                continue
            base = self.special_chars if (name == "special" and self.special_chars) else None
            chars = base if base is not None else DEFAULT_POOL[name]
            kept = "".join(ch for ch in dict.fromkeys(chars) if ch not in excluded)
            if kept:
                classes[name] = kept
        return CharacterPool(classes=classes)

    def admits(self, password: str) -> bool:
        """Whether ``password`` is one of the strings these parameters allow."""
        if len(password) != self.length:
            return False
        pool = self.pool()
        counts = dict.fromkeys(pool.classes, 0)
        lookup = {ch: name for name, chars in pool.classes.items() for ch in chars}
        for ch in password:
            name = lookup.get(ch)
            if name is None:
                return False
            counts[name] += 1
        if any(counts[n] < self.minimum(n) for n in counts):
            return False
        return sum(1 for v in counts.values() if v) >= self.min_classes_present

    def guaranteed_classes(self) -> int:
        """How many distinct classes every generated password is sure to contain."""
        required = sum(1 for n in CLASS_NAMES if self.enabled(n) and self.minimum(n) >= 1)
        return max(required, self.min_classes_present)

    def meets(self, preset: Preset, *, fips_mode: bool) -> bool:
        """Whether every password generated with these parameters meets ``preset``."""
        return self.shortfall(preset, fips_mode=fips_mode) == ""

    def shortfall(self, preset: Preset, *, fips_mode: bool = True) -> str:
        """Why these parameters fall short of ``preset`` ('' when they don't).

        Besides the preset's length and composition rules, the *exact* entropy
        must reach the preset's floor and every allowed class (and the whole
        pool) must keep its minimum of distinct characters: shrinking the pool
        with ``exclude`` or ``special_chars`` cannot buy a certificate.
        """
        return _shortfall(self, preset, fips_mode)

    # -- validation -----------------------------------------------------------

    def _validate(self) -> None:
        length = self.length
        if isinstance(length, bool) or not isinstance(length, int):
            raise InvalidParameters(f"length must be an integer, got {type(length).__name__}")
        if not MIN_LENGTH <= length <= MAX_LENGTH:
            raise LengthOutOfRange(
                f"length must be between {MIN_LENGTH} and {MAX_LENGTH}, got {length}"
                if abs(length) < 10**12
                else f"length must be between {MIN_LENGTH} and {MAX_LENGTH}"
            )
        for name in (*CLASS_NAMES, "exclude_lookalikes", "breach_check"):
            value = getattr(self, name)
            if not isinstance(value, bool):
                raise InvalidParameters(f"{name} must be true or false, got {type(value).__name__}")
        for key in ("min_upper", "min_lower", "min_digits", "min_special", "min_classes_present"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int):
                raise InvalidParameters(f"{key} must be an integer, got {type(value).__name__}")
            if value < 0:
                raise InvalidParameters(f"{key} must not be negative, got {value}")
            if value > MAX_LENGTH:
                raise InvalidParameters(f"{key} must be at most {MAX_LENGTH}, got {value}")
        for key in ("special_chars", "exclude"):
            value = getattr(self, key)
            if value is None and key == "special_chars":
                continue
            if not isinstance(value, str):
                raise InvalidParameters(f"{key} must be a string, got {type(value).__name__}")
            if len(value) > 256:
                raise InvalidParameters(f"{key} is too long ({len(value)} characters, at most 256)")
            _check_charset(key, value)
        if self.special_chars is not None:
            letters_or_digits = [c for c in self.special_chars if c.isalnum()]
            if letters_or_digits:
                raise InvalidParameters(
                    f"special_chars may not contain letters or digits, got {letters_or_digits[0]!r}"
                )
            if self.special_chars == "":
                raise InvalidParameters("special_chars must not be empty (disable special instead)")
            if not self.special:
                raise ConflictingParameters("special_chars is set but special is disabled")

        pool = self.pool()
        for name in CLASS_NAMES:
            minimum = self.minimum(name)
            if not self.enabled(name):
                if minimum:
                    raise ConflictingParameters(f"min_{name} is {minimum} but {name} is disabled")
                continue
            if name not in pool.classes:
                raise ConflictingParameters(
                    f"every {name} character is excluded; disable {name} or exclude fewer characters"
                )
        if not pool.classes:
            raise ConflictingParameters("no character class is enabled")
        total_min = sum(self.minimum(n) for n in CLASS_NAMES)
        if total_min > length:
            raise ConflictingParameters(
                f"class minimums add up to {total_min}, more than the length {length}"
            )
        enabled_count = len(pool.classes)
        if self.min_classes_present > enabled_count:
            raise ConflictingParameters(
                f"min_classes_present is {self.min_classes_present} but only "
                f"{enabled_count} classes are enabled"
            )
        # Classes demanded by min_classes_present beyond those with a minimum
        # need at least one character each, on top of the minimums.
        with_minimum = sum(1 for n in CLASS_NAMES if self.minimum(n) >= 1)
        needed = total_min + max(0, self.min_classes_present - with_minimum)
        if needed > length:
            raise ConflictingParameters(
                f"min_classes_present {self.min_classes_present} with the class minimums "
                f"needs at least {needed} characters, more than the length {length}"
            )


def _shortfall(params: GenerationParameters, preset: Preset, fips_mode: bool) -> str:
    """:meth:`GenerationParameters.shortfall`."""
    if params.length < preset.min_length:
        return f"length {params.length} < {preset.min_length}"
    for name in preset.required_classes:
        if not (params.enabled(name) and params.minimum(name) >= 1):
            return f"{name} characters are not required"
    if params.guaranteed_classes() < preset.min_classes_present:
        return f"fewer than {preset.min_classes_present} character classes guaranteed"
    if preset.breach_check and not params.breach_check:
        return "the breach-list check is disabled"
    bits = exact_entropy_bits(params)
    floor = preset.entropy_floor
    if bits < floor.bits:
        return (
            f"exact entropy {bits:g} bits is below the {preset.id} floor of {floor.bits:g} "
            f"bits ({floor.describe()})"
        )
    pool_reason = _pool_shortfall(params, preset)
    if pool_reason:
        return pool_reason
    if preset.min_entropy_bits and bits < preset.min_entropy_bits:
        return f"entropy below {preset.min_entropy_bits:g} bits"
    if preset.requires_fips_entropy and not fips_mode:
        return "the entropy source is not running in FIPS mode"
    return ""


def _pool_shortfall(params: GenerationParameters, preset: Preset) -> str:
    """Why the pool is smaller than ``preset`` allows ('' when it isn't).

    Every allowed class counts, required or not: a class shrunk to one
    known character is a fixed character wherever the generator puts it.
    """
    pool = params.pool()
    minimums = preset.min_pool
    for name, chars in pool.classes.items():
        need = minimums.of(name)
        if len(chars) < need:
            return (
                f"{name} has {len(chars)} distinct character(s) after exclusions, below "
                f"the {preset.id} minimum of {need}"
            )
    if pool.size < minimums.total:
        return (
            f"the pool has {pool.size} distinct character(s) after exclusions, below the "
            f"{preset.id} minimum of {minimums.total}"
        )
    return ""
