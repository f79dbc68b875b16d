"""Exact entropy: the published vectors, and counts checked by brute force."""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import given, settings, strategies as st

from passgeni_core import GenerationParameters, count_outputs, entropy_report
from passgeni_core.model import count_compositions

VECTORS = [
    ("nist-800-63b", 8, 52.44, 52.44),
    ("hipaa", 12, 78.14, 78.66),
    ("pci-dss", 12, 78.64, 78.66),
    ("iso-27001", 14, 91.39, 91.76),
    ("soc2", 16, 104.59, 104.87),
    ("fips-140-3", 20, 130.93, 131.09),
]


@pytest.mark.parametrize(("preset", "length", "bits", "naive"), VECTORS)
def test_published_vectors_for_the_default_94_character_pool(
    preset: str, length: int, bits: float, naive: float
) -> None:
    report = entropy_report(GenerationParameters.for_preset(preset, length=length))
    assert report.pool_size == 94
    assert report.bits == bits
    assert report.naive_bits == naive


def _brute_force(sizes: tuple[int, ...], mins: tuple[int, ...], n: int, r: int) -> int:
    total = 0
    labels = [i for i, s in enumerate(sizes) for _ in range(s)]
    for combo in itertools.product(labels, repeat=n):
        counts = [combo.count(i) for i in range(len(sizes))]
        if (
            all(c >= m for c, m in zip(counts, mins, strict=True))
            and sum(1 for c in counts if c) >= r
        ):
            total += 1
    return total


@settings(max_examples=60, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 3), min_size=1, max_size=4).map(tuple),
    n=st.integers(1, 5),
    data=st.data(),
)
def test_exact_count_matches_brute_force(
    sizes: tuple[int, ...], n: int, data: st.DataObject
) -> None:
    mins = tuple(data.draw(st.integers(0, 3)) for _ in sizes)
    r = data.draw(st.integers(0, len(sizes)))
    assert count_compositions(sizes, mins, n, r) == _brute_force(sizes, mins, n, r)


def test_inclusion_exclusion_and_dynamic_programming_agree() -> None:
    # min 1 everywhere takes the inclusion-exclusion path; the DP path is
    # forced by asking one class for 2 and checking against the identity
    # count(min=2) = count(min=1) - strings with exactly one of that class.
    sizes, n = (26, 26, 10, 32), 12
    base = count_compositions(sizes, (1, 1, 1, 1), n, 0)
    # exactly one digit: choose its position and value, rest from the other
    # classes with each at least once.
    exactly_one = n * 10 * count_compositions((26, 26, 32), (1, 1, 1), n - 1, 0)
    assert count_compositions(sizes, (1, 1, 2, 1), n, 0) == base - exactly_one


def test_breach_list_entries_are_subtracted_when_checked() -> None:
    checked = GenerationParameters(length=8, upper=False, digits=False, special=False)
    unchecked = GenerationParameters(
        length=8, upper=False, digits=False, special=False, breach_check=False
    )
    assert count_outputs(unchecked) == 26**8
    # 'password', 'iloveyou', 'sunshine'... are on the list and never emitted.
    assert 26**8 - count_outputs(checked) > 100
    assert entropy_report(checked).bits <= entropy_report(unchecked).bits


def test_naive_entropy_overstates_when_composition_rules_reject_strings() -> None:
    report = entropy_report(GenerationParameters(length=12, min_digits=10))
    assert report.bits < report.naive_bits - 20
    assert report.bits == round(math.log2(report.outcomes), 2)


def test_exclusions_shrink_the_pool() -> None:
    params = GenerationParameters.for_preset("soc2", exclude="@/\"\\:'")
    assert entropy_report(params).pool_size == 88
