"""Exact entropy of the generator.

The generator draws uniformly from the set of strings the parameters allow,
so its entropy is exactly ``log2(|set|)``. The set is counted exactly (Python
integers, no floating point until the final log):

* when every class minimum is 0 or 1, by inclusion-exclusion over the classes
  (at most 3^4 terms);
* otherwise by dynamic programming over the classes, counting arrangements of
  ``k`` characters of a class into the remaining positions.

When the breach-list check is on, the listed passwords that would otherwise
be valid outputs are never emitted, so they are subtracted from the count.
The naive ``length x log2(pool)`` is reported beside it for comparison; it
overstates the entropy whenever composition rules reject some strings.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

from ._breach import breach_list
from ._presets import CLASS_NAMES

if TYPE_CHECKING:
    # Annotations only: the parameters ask this module for their entropy.
    from ._params import GenerationParameters

__all__ = ["EntropyReport", "count_outputs", "entropy_report", "exact_entropy_bits"]


@dataclass(frozen=True)
class EntropyReport:
    """Entropy figures for one set of parameters."""

    #: log2 of the number of possible outputs, rounded to 0.01.
    bits: float
    #: length x log2(pool size), rounded to 0.01, for comparison.
    naive_bits: float
    pool_size: int
    #: The exact number of possible outputs.
    outcomes: int

    def to_dict(self) -> dict[str, object]:
        return {
            "entropy_bits": self.bits,
            "naive_entropy_bits": self.naive_bits,
            "pool_size": self.pool_size,
        }


def _spec(params: GenerationParameters) -> tuple[tuple[int, ...], tuple[int, ...], int, int]:
    pool = params.pool()
    sizes = tuple(len(pool.classes[n]) for n in CLASS_NAMES if n in pool.classes)
    mins = tuple(params.minimum(n) for n in CLASS_NAMES if n in pool.classes)
    return sizes, mins, params.length, params.min_classes_present


@lru_cache(maxsize=512)
def count_compositions(sizes: tuple[int, ...], mins: tuple[int, ...], n: int, r: int) -> int:
    """Number of length-``n`` strings over disjoint classes of the given sizes
    with at least ``mins[i]`` characters of class ``i`` and at least ``r``
    distinct classes present."""
    if all(m <= 1 for m in mins):
        return _count_inclusion_exclusion(sizes, mins, n, r)
    table = suffix_tables(sizes, mins, n)[0]
    return sum(table[n][c] for c in range(r, len(sizes) + 1))


def _count_inclusion_exclusion(
    sizes: tuple[int, ...], mins: tuple[int, ...], n: int, r: int
) -> int:
    k = len(sizes)
    required = {i for i in range(k) if mins[i] >= 1}
    total = 0
    for m in range(max(r, len(required), 1), k + 1):
        for present in itertools.combinations(range(k), m):
            if not required.issubset(present):
                continue
            # Strings using exactly the classes in `present`, each at least once.
            exact = 0
            for j in range(m + 1):
                for subset in itertools.combinations(present, j):
                    exact += (-1) ** (m - j) * sum(sizes[i] for i in subset) ** n
            total += exact
    return total


@lru_cache(maxsize=64)
def suffix_tables(
    sizes: tuple[int, ...], mins: tuple[int, ...], n: int
) -> tuple[tuple[tuple[int, ...], ...], ...]:
    """``tables[i][L][c]``: ways classes ``i..`` fill ``L`` positions with ``c``
    of them present (position choice included). ``tables[len(sizes)]`` is the
    empty product. Shared with the exact composition sampler."""
    k = len(sizes)
    tables: list[tuple[tuple[int, ...], ...]] = [()] * (k + 1)
    last = [[0] * (k + 1) for _ in range(n + 1)]
    last[0][0] = 1
    tables[k] = tuple(tuple(row) for row in last)
    for i in range(k - 1, -1, -1):
        size, minimum = sizes[i], mins[i]
        cur = [[0] * (k + 1) for _ in range(n + 1)]
        for total in range(n + 1):
            for kk in range(minimum, total + 1):
                rest = total - kk
                ways = math.comb(total, kk) * size**kk
                present = 1 if kk else 0
                row = last[rest]
                out = cur[total]
                for c in range(k + 1 - present):
                    if row[c]:
                        out[c + present] += ways * row[c]
        tables[i] = tuple(tuple(row) for row in cur)
        last = cur
    return tuple(tables)


def _breach_excluded(params: GenerationParameters) -> int:
    if not params.breach_check:
        return 0
    return sum(1 for w in breach_list().words_of_length(params.length) if params.admits(w))


def count_outputs(params: GenerationParameters) -> int:
    """The exact number of distinct passwords the generator can emit."""
    sizes, mins, n, r = _spec(params)
    return count_compositions(sizes, mins, n, r) - _breach_excluded(params)


def exact_entropy_bits(params: GenerationParameters) -> float:
    """log2 of the number of possible outputs, rounded to 0.01."""
    return entropy_report(params).bits


@lru_cache(maxsize=512)
def entropy_report(params: GenerationParameters) -> EntropyReport:
    """Exact and naive entropy of the generator for ``params``."""
    outcomes = count_outputs(params)
    pool_size = params.pool().size
    bits = round(math.log2(outcomes), 2) if outcomes > 0 else 0.0
    naive = round(params.length * math.log2(pool_size), 2)
    return EntropyReport(bits=bits, naive_bits=naive, pool_size=pool_size, outcomes=outcomes)
