"""The generator: constraint satisfaction (property-based) and uniformity (chi-square).

Statistical tests use a fixed significance level ALPHA = 1e-6 each. There are
five such tests below, so a correct generator fails this file by chance with
probability at most 5e-6 per run (about once in 200,000 runs). The power
test shows the same check rejects the biased "fill the minimums, then
shuffle" method with a p-value far below ALPHA, so the check can fail.
"""

from __future__ import annotations

import collections
import secrets
import string

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from scipy.stats import chisquare

from passgeni_core import (
    GenerationParameters,
    InvalidParameters,
    breach_list,
    generate,
    generate_many,
    generate_password,
)
from passgeni_core.model import Sampler, count_compositions

ALPHA = 1e-6

# A tiny space where every valid string can be listed: pool {A, B, C, 1},
# length 4, at least one letter and one digit -> 4^4 - 3^4 - 1^4 = 174 strings.
# (At length 3, fill-then-shuffle happens to be uniform; at 4 it is not: its
# most likely string is 4/3 as likely as its least likely one.)
SMALL = GenerationParameters(
    length=4,
    lower=False,
    special=False,
    exclude="DEFGHIJKLMNOPQRSTUVWXYZ023456789",
    min_upper=1,
    min_digits=1,
    breach_check=False,
)
SMALL_SPACE = [
    "".join(t)
    for t in __import__("itertools").product("ABC1", repeat=4)
    if any(c in "ABC" for c in t) and "1" in t
]


def _uniformity_pvalue(samples: list[str], space: list[str]) -> float:
    counts = collections.Counter(samples)
    assert set(counts) <= set(space), "generator emitted a string outside the valid set"
    observed = [counts.get(s, 0) for s in space]
    return float(chisquare(observed).pvalue)


def test_small_space_is_listed_correctly() -> None:
    assert len(SMALL_SPACE) == 174
    assert all(SMALL.admits(s) for s in SMALL_SPACE)


def test_rejection_sampler_is_uniform_over_every_valid_string() -> None:
    sampler = Sampler(SMALL)
    assert not sampler.use_exact
    samples = sampler.draw(174 * 300)
    assert _uniformity_pvalue(samples, SMALL_SPACE) > ALPHA


def test_exact_composition_sampler_is_uniform_over_every_valid_string() -> None:
    sampler = Sampler(SMALL)
    sampler.use_exact = True
    samples = sampler.draw(174 * 300)
    assert _uniformity_pvalue(samples, SMALL_SPACE) > ALPHA


def _fill_minimums_then_shuffle() -> str:
    chars = [secrets.choice("ABC"), "1"]
    chars += [secrets.choice("ABC1"), secrets.choice("ABC1")]
    # shuffle with the CSPRNG
    for i in range(len(chars) - 1, 0, -1):
        j = secrets.randbelow(i + 1)
        chars[i], chars[j] = chars[j], chars[i]
    return "".join(chars)


def test_the_uniformity_check_rejects_fill_then_shuffle() -> None:
    # Power check: the biased method over-weights strings with exactly one
    # letter or one digit; the same test must catch it.
    samples = [_fill_minimums_then_shuffle() for _ in range(174 * 300)]
    assert _uniformity_pvalue(samples, SMALL_SPACE) < ALPHA


def test_characters_and_positions_follow_the_exact_distribution() -> None:
    params = GenerationParameters.for_preset("fips-140-3", length=20)
    sampler = Sampler(params)
    sizes, mins, n = sampler.sizes, sampler.mins, params.length
    total = count_compositions(sizes, mins, n, 0)
    # P(a position holds one given character of class i): fix that position and
    # count the completions, whose class-i minimum drops by one.
    per_char = []
    for i in range(len(sizes)):
        reduced = tuple(max(m - 1, 0) if j == i else m for j, m in enumerate(mins))
        per_char.append(count_compositions(sizes, reduced, n - 1, 0) / total)
    assert abs(sum(p * s for p, s in zip(per_char, sizes, strict=True)) - 1) < 1e-12
    alphabet = params.pool().alphabet
    expected_p = {
        ch: per_char[i] for i, chars in enumerate(params.pool().classes.values()) for ch in chars
    }
    samples = generate_many(params, 6000)
    # Characters over all positions (94 categories).
    counts = collections.Counter("".join(samples))
    n_chars = 6000 * n
    observed = [counts.get(c, 0) for c in alphabet]
    expected = [expected_p[c] * n_chars for c in alphabet]
    assert chisquare(observed, expected).pvalue > ALPHA
    # Class by position (20 positions x 4 classes): no position is favoured.
    class_of = {c: i for i, chars in enumerate(params.pool().classes.values()) for c in chars}
    table = [[0] * len(sizes) for _ in range(n)]
    for pw in samples:
        for pos, ch in enumerate(pw):
            table[pos][class_of[ch]] += 1
    class_p = [per_char[i] * sizes[i] for i in range(len(sizes))]
    observed = [x for row in table for x in row]
    expected = [class_p[i] * 6000 for _ in range(n) for i in range(len(sizes))]
    assert chisquare(observed, expected).pvalue > ALPHA


_printable = st.characters(min_codepoint=0x21, max_codepoint=0x7E)


@st.composite
def parameter_sets(draw: st.DrawFn) -> GenerationParameters:
    length = draw(st.integers(1, 64))
    toggles = draw(st.lists(st.booleans(), min_size=4, max_size=4))
    mins = [draw(st.integers(0, 4)) if on else 0 for on in toggles]
    special_chars = draw(
        st.none() | st.text(alphabet=st.sampled_from(string.punctuation), min_size=1, max_size=8)
    )
    try:
        return GenerationParameters(
            length=length,
            upper=toggles[0],
            lower=toggles[1],
            digits=toggles[2],
            special=toggles[3],
            min_upper=mins[0],
            min_lower=mins[1],
            min_digits=mins[2],
            min_special=mins[3],
            min_classes_present=draw(st.integers(0, 4)),
            special_chars=special_chars if toggles[3] else None,
            exclude=draw(st.text(alphabet=_printable, max_size=20)),
            exclude_lookalikes=draw(st.booleans()),
        )
    except InvalidParameters:
        from hypothesis import assume

        assume(False)
        raise


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(params=parameter_sets())
def test_every_output_meets_its_constraints(params: GenerationParameters) -> None:
    banned = breach_list()
    excluded = set(params.exclude)
    for password in generate_many(params, 5):
        assert len(password) == params.length
        assert password.isascii() and password.isprintable() and " " not in password
        assert params.admits(password)
        assert not excluded.intersection(password)
        assert password not in banned


@pytest.mark.parametrize(
    "preset", ["nist-800-63b", "hipaa", "pci-dss", "soc2", "iso-27001", "fips-140-3"]
)
def test_generate_reports_the_facts_and_hides_the_password(preset: str) -> None:
    params = GenerationParameters.for_preset(preset)
    result = generate(params)
    assert params.admits(result.password)
    assert preset in result.standards_met
    assert result.password not in repr(result) and result.password not in str(result)
    assert result.password not in str(result.public_dict())
    assert result.breach_check is not None and result.breach_check.passed
    assert result.breach_check.list_name == "zxcvbn/passwords"
    assert result.breach_check.entries == len(breach_list())


def test_listed_passwords_are_never_emitted() -> None:
    # 4 lowercase letters: many listed words ('love', 'rock', ...) are valid
    # strings, so they would appear among 20,000 draws if not filtered.
    params = GenerationParameters(length=4, upper=False, digits=False, special=False)
    listed = set(breach_list().words_of_length(4)) & {
        w for w in breach_list().words_of_length(4) if params.admits(w)
    }
    assert len(listed) > 50
    outputs = set(generate_many(params, 20000))
    assert not outputs & listed


def test_low_acceptance_parameters_use_the_exact_sampler_and_still_satisfy() -> None:
    params = GenerationParameters(length=12, min_digits=10)
    assert Sampler(params).use_exact
    for password in generate_many(params, 200):
        assert sum(c.isdigit() for c in password) >= 10


def test_no_seeded_mode_exists() -> None:
    import inspect

    for fn in (generate, generate_many, generate_password):
        assert "seed" not in inspect.signature(fn).parameters
