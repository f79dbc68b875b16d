"""Describes where the randomness came from: an enumerated declaration, never free text.

The descriptor goes into every certificate as ``entropy_source``: what the
**client** declares about the randomness it drew its seed from (the authority
cannot observe another machine's RNG). Every field takes a value from a fixed
set or a strict pattern, so a certificate cannot carry "Thales Luna HSM (FIPS
140-3 L3 cert #9999)" as if it were a fact; a request with any other value is
refused (:class:`~passgeni_core.InvalidEntropySource`, naming the field).

The FIPS 140-3 claim depends on it: the operating system's CSPRNG is only a
FIPS-validated source while the kernel runs in FIPS mode. Detecting that reads
a file, which is I/O, so it is done once at the edge (CLI, authority start-up)
with :func:`detect_entropy_source` and the result is passed down; nothing
deeper in the core reads the host.

Certificates issued before the schema carry free text: readers take the claim
as the dictionary it is (:meth:`EntropySource.from_claim` says whether it fits
the schema), so those certificates keep verifying.
"""

from __future__ import annotations

import os
import platform
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._errors import InvalidEntropySource

__all__ = [
    "ENTROPY_APIS",
    "FIPS_FLAG_PATH",
    "KERNEL_SOURCES",
    "EntropySource",
    "detect_entropy_source",
    "read_fips_flag",
]

FIPS_FLAG_PATH = Path("/proc/sys/crypto/fips_enabled")

#: The randomness APIs a generator may declare, each a CSPRNG interface.
ENTROPY_APIS: tuple[str, ...] = (
    "os.urandom",  # Python (the core's generator)
    "secrets",  # Python's secrets module (os.urandom underneath): the authority's nonce
    "random.SystemRandom",  # Python (os.urandom underneath)
    "crypto.getRandomValues",  # Web Crypto: the browser generator (issue #22)
    "crypto.randomBytes",  # Node.js
)
#: The operating-system sources behind them. ``platform CSPRNG``: the runtime's
#: own, not named more precisely (a browser's, or Python without ``os.getrandom``).
KERNEL_SOURCES: tuple[str, ...] = (
    "getrandom(2)",
    "/dev/urandom",
    "getentropy(3)",
    "BCryptGenRandom",
    "platform CSPRNG",
)
_PLATFORM_RE = re.compile(
    r"(?:Linux|Darwin|Windows|FreeBSD|OpenBSD|NetBSD|SunOS|AIX) [0-9][0-9A-Za-z._+-]{0,63}"
)
_PYTHON_RE = re.compile(
    r"(?:cpython|pypy|graalpy) [0-9]{1,2}\.[0-9]{1,3}\.[0-9]{1,3}(?:(?:a|b|rc)[0-9]{1,3})?\+?"
)
_FIELDS = ("api", "kernel_source", "fips_mode", "platform", "python")


def _choice(data: dict[Any, Any], key: str, allowed: tuple[str, ...], default: str) -> str:
    value = data.get(key, default)
    if not isinstance(value, str) or value not in allowed:
        shown = repr(value[:40]) if isinstance(value, str) else type(value).__name__
        raise InvalidEntropySource(
            f"entropy_source.{key} must be one of {', '.join(allowed)} (got {shown})"
        )
    return value


def _pattern(data: dict[Any, Any], key: str, pattern: re.Pattern[str], example: str) -> str:
    value = data.get(key, "")
    if not isinstance(value, str) or (value and pattern.fullmatch(value) is None):
        shown = repr(value[:40]) if isinstance(value, str) else type(value).__name__
        raise InvalidEntropySource(
            f"entropy_source.{key} must be empty or like {example!r} (got {shown})"
        )
    return value


def _validated(data: object) -> dict[str, Any]:
    """The fields of a descriptor, checked against the schema (see :meth:`EntropySource.from_dict`)."""
    if not isinstance(data, dict):
        raise InvalidEntropySource("entropy_source must be a JSON object")
    unknown = sorted(str(k)[:40] for k in data if k not in _FIELDS)
    if unknown:
        raise InvalidEntropySource(
            f"unknown entropy_source field(s): {', '.join(unknown)} (known: {', '.join(_FIELDS)})"
        )
    fips = data.get("fips_mode", False)
    if not isinstance(fips, bool):
        raise InvalidEntropySource("entropy_source.fips_mode must be true or false")
    return {
        "api": _choice(data, "api", ENTROPY_APIS, "os.urandom"),
        "kernel_source": _choice(data, "kernel_source", KERNEL_SOURCES, "getrandom(2)"),
        "fips_mode": fips,
        "platform": _pattern(data, "platform", _PLATFORM_RE, "Linux 6.1.0-18-amd64"),
        "python": _pattern(data, "python", _PYTHON_RE, "cpython 3.11.2"),
    }


@dataclass(frozen=True, kw_only=True)
class EntropySource:
    """Public, enumerated description of a generator's randomness (a declaration)."""

    #: The API the bytes came from (one of :data:`ENTROPY_APIS`).
    api: str = "os.urandom"
    #: The kernel interface behind it (one of :data:`KERNEL_SOURCES`).
    kernel_source: str = "getrandom(2)"
    #: Whether the host kernel reported FIPS mode when the randomness was drawn.
    fips_mode: bool = False
    #: ``"<system> <release>"`` (``Linux 6.1.0-18-amd64``) or empty.
    platform: str = ""
    #: ``"<implementation> <version>"`` (``cpython 3.11.2``) or empty.
    python: str = ""

    def __post_init__(self) -> None:
        # The one schema, whoever builds the descriptor (a request, a caller, detection).
        _validated(self.to_dict())

    def to_dict(self) -> dict[str, Any]:
        return {
            "api": self.api,
            "kernel_source": self.kernel_source,
            "fips_mode": self.fips_mode,
            "platform": self.platform,
            "python": self.python,
        }

    def describe(self) -> str:
        """One line for people: ``os.urandom over getrandom(2), FIPS mode: no``."""
        host = ", ".join(x for x in (self.platform, self.python) if x)
        return (
            f"{self.api} over {self.kernel_source}, FIPS mode: "
            f"{'yes' if self.fips_mode else 'no'}" + (f" ({host})" if host else "")
        )

    @classmethod
    def from_dict(cls, data: object) -> EntropySource:
        """Parse a descriptor from a request (or a caller): the enumerated schema, strictly.

        Raises:
            InvalidEntropySource: not an object, an unknown field, or a value outside
                the enumerated sets and patterns; the message names the field.
        """
        return cls(**_validated(data))

    @classmethod
    def from_claim(cls, data: object) -> EntropySource | None:
        """The descriptor a certificate states, or ``None`` when it does not fit the
        schema (a certificate issued before it, whose free text is shown as is)."""
        try:
            return cls.from_dict(data)
        except InvalidEntropySource:
            return None


def read_fips_flag(path: Path = FIPS_FLAG_PATH) -> bool:
    """Whether the kernel flag at ``path`` says FIPS mode (``"1"``).

    A missing or unreadable flag file means "not in FIPS mode": claiming FIPS
    without positive evidence would be false evidence.
    """
    try:
        return path.read_text().strip() == "1"
    except (OSError, UnicodeDecodeError):
        return False


def _matching(value: str, pattern: re.Pattern[str]) -> str:
    # A host the patterns do not describe is left undescribed rather than refused.
    return value if pattern.fullmatch(value) else ""


def detect_entropy_source(
    *, fips_flag_path: Path = FIPS_FLAG_PATH, api: str = "os.urandom"
) -> EntropySource:
    """Describe this host's CSPRNG (through ``api``), reading the kernel's FIPS flag."""
    kernel = "getrandom(2)" if hasattr(os, "getrandom") else "platform CSPRNG"
    return EntropySource(
        api=api,
        kernel_source=kernel,
        fips_mode=read_fips_flag(fips_flag_path),
        platform=_matching(f"{platform.system()} {platform.release()}".strip(), _PLATFORM_RE),
        python=_matching(f"{sys.implementation.name} {platform.python_version()}", _PYTHON_RE),
    )
