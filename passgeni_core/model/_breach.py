"""Common/breached password list check (NIST SP 800-63B §5.1.1.2 / 800-63B-4 §3.1.1.2).

The list is not typed by hand: it is the 30,000-entry ``passwords`` frequency
list shipped by the ``zxcvbn`` package (drawn from leaked password corpora).
It is loaded lazily, once, because most runs never need it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

__all__ = ["BreachCheck", "BreachList", "breach_list"]


@dataclass(frozen=True)
class BreachCheck:
    """The record of one check, stored in generation results and certificates."""

    list_name: str
    list_version: str
    entries: int
    passed: bool

    def to_dict(self) -> dict[str, object]:
        return {
            "list": self.list_name,
            "version": self.list_version,
            "entries": self.entries,
            "passed": self.passed,
        }


class BreachList:
    """A set of known-bad passwords, compared exactly (case-sensitive)."""

    def __init__(self, name: str, version: str, words: frozenset[str]) -> None:
        self.name = name
        self.version = version
        self._words = words

    def __len__(self) -> int:
        return len(self._words)

    def __contains__(self, candidate: object) -> bool:
        return candidate in self._words

    def __repr__(self) -> str:
        return f"BreachList(name={self.name!r}, version={self.version!r}, entries={len(self)})"

    def words(self) -> frozenset[str]:
        """Every listed password (the browser generator ships them to the page)."""
        return self._words

    def words_of_length(self, length: int) -> list[str]:
        return [w for w in self._words if len(w) == length]

    def check(self, candidate: str) -> BreachCheck:
        return BreachCheck(self.name, self.version, len(self), candidate not in self._words)


@cache
def breach_list() -> BreachList:
    """The shipped list (zxcvbn's ``passwords`` frequency list)."""
    # Imported on first use, with the list: most runs never need either.
    from importlib import metadata

    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    words = frozenset(str(w) for w in FREQUENCY_LISTS["passwords"])
    return BreachList("zxcvbn/passwords", metadata.version("zxcvbn"), words)
