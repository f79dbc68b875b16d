"""Entropy floors and minimum pools per preset (issue #16, item 3).

A certificate never says more than is true: parameters that shrink the pool
with ``exclude``/``special_chars`` until the exact entropy is far below what
the preset's minimum length promises are refused, and ``standards_met``
(recomputed from the parameters) never lists such a preset.
"""

from __future__ import annotations

import math
import string

import pytest
from hypothesis import given, settings, strategies as st

from passgeni_core import (
    CLASS_NAMES,
    GenerationParameters,
    InvalidParameters,
    PresetNotMet,
    count_outputs,
    exact_entropy_bits,
    get_preset,
    list_presets,
    standards_met,
)
from passgeni_core.cli import main
from passgeni_core.model import check_preset

from .cli_helpers import one_line_error

#: min_length x log2(62), to 0.01: the figures the issue names (47.6, 71.4, ...).
FLOORS = {
    "nist-800-63b": 47.63,
    "nist-800-63b-4-single-factor": 89.31,
    "hipaa": 71.45,
    "pci-dss": 71.45,
    "iso-27001": 83.36,
    "soc2": 95.27,
    "fips-140-3": 119.08,
}
CLASS_MINIMUMS = {"upper": 20, "lower": 20, "digits": 4, "special": 8}
TOTAL_MINIMUMS = {
    "nist-800-63b": 20,
    "nist-800-63b-4-single-factor": 20,
    "pci-dss": 32,
    "hipaa": 52,
    "iso-27001": 52,
    "soc2": 52,
    "fips-140-3": 52,
}
DEFAULT_SPECIALS = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"


def keep_only(upper: str, lower: str, digits: str, special: str) -> str:
    """The ``exclude`` that leaves exactly these characters of the default pool."""
    keep = set(upper + lower + digits + special)
    pool = string.ascii_uppercase + string.ascii_lowercase + string.digits + DEFAULT_SPECIALS
    return "".join(ch for ch in pool if ch not in keep)


# --- the data ------------------------------------------------------------------------


def test_every_preset_has_a_floor_and_it_is_its_minimum_length_over_62_characters() -> None:
    assert {p.id for p in list_presets()} == set(FLOORS)
    for preset in list_presets():
        floor = preset.entropy_floor
        assert floor.bits == FLOORS[preset.id], preset.id
        assert (floor.length, floor.pool) == (preset.min_length, 62)
        assert floor.bits == round(preset.min_length * math.log2(62), 2)
        # The basis is written beside the figure, with the figure in it.
        assert f"{preset.min_length} x log2(62) = {floor.bits:.2f} bits" in floor.basis


def test_every_preset_documents_its_class_and_pool_minimums() -> None:
    for preset in list_presets():
        pool = preset.min_pool
        assert {n: pool.of(n) for n in CLASS_NAMES} == CLASS_MINIMUMS, preset.id
        assert pool.total == TOTAL_MINIMUMS[preset.id]
        assert "digits reduced to '7'" in pool.basis and f"Total {pool.total}" in pool.basis
        shown = preset.to_dict()
        assert shown["entropy_floor"]["bits"] == FLOORS[preset.id]
        assert shown["min_pool"]["total"] == pool.total and shown["min_pool"]["basis"]
        assert f">= {FLOORS[preset.id]:g} bits exact entropy" in shown["summary"]


@pytest.mark.parametrize("preset", list(FLOORS))
def test_every_presets_own_defaults_clear_its_floor(preset: str) -> None:
    p = get_preset(preset)
    for length in (p.min_length, p.default_length):
        params = GenerationParameters.for_preset(p, length=length)
        assert exact_entropy_bits(params) >= p.entropy_floor.bits
        assert preset in standards_met(params)


# --- the three lying certificates of the issue ------------------------------------------


def nist_qqqqqqqq() -> GenerationParameters:
    """Only 'q' left: the one password is ``qqqqqqqq`` (0.0 bits, certified NIST before)."""
    return GenerationParameters(
        length=8,
        upper=False,
        digits=False,
        special=False,
        exclude=string.ascii_lowercase.replace("q", ""),
    )


def one_character_per_class(length: int) -> GenerationParameters:
    """Every class shrunk to one character, all four required (SOC 2 31.94, HIPAA 23.81)."""
    return GenerationParameters(
        length=length,
        min_upper=1,
        min_lower=1,
        min_digits=1,
        min_special=1,
        min_classes_present=4,
        exclude=keep_only("A", "a", "7", "!"),
    )


ATTACKS = [
    ("nist-800-63b", nist_qqqqqqqq, 0.0),
    ("soc2", lambda: one_character_per_class(16), 31.94),
    ("hipaa", lambda: one_character_per_class(12), 23.81),
]


@pytest.mark.parametrize(("preset", "build", "bits"), ATTACKS)
def test_the_issues_attacks_are_refused_by_the_core(preset: str, build, bits: float) -> None:
    params = build()
    p = get_preset(preset)
    # The reconstruction is the issue's: the same exact entropy it reports.
    assert exact_entropy_bits(params) == bits
    floor = f"{p.entropy_floor.bits:g} bits ({p.min_length} characters over a 62-character pool)"
    with pytest.raises(PresetNotMet) as caught:
        check_preset(preset, params)
    assert caught.value.message == (
        f"parameters do not meet preset {preset}: exact entropy {bits:g} bits is below the "
        f"{preset} floor of {floor}"
    )
    assert caught.value.code == "preset_not_met" and caught.value.http_status == 422
    assert not params.meets(p, fips_mode=True)
    # No certificate could list it: standards_met is computed by the same rule.
    assert standards_met(params) == []


def test_the_attacks_through_for_preset_are_refused_too() -> None:
    with pytest.raises(PresetNotMet, match=r"below the soc2 floor of 95\.27 bits"):
        GenerationParameters.for_preset("soc2", length=16, exclude=keep_only("A", "a", "7", "!"))
    with pytest.raises(PresetNotMet, match=r"below the nist-800-63b floor of 47\.63 bits"):
        GenerationParameters.for_preset(
            "nist-800-63b",
            length=8,
            upper=False,
            digits=False,
            special=False,
            exclude=string.ascii_lowercase.replace("q", ""),
        )


@pytest.mark.parametrize(
    "argv",
    [
        ["generate", "--preset", "soc2", "--length", "16", "--exclude", keep_only("A", "a", "7", "!")],
        [
            "generate", "--preset", "nist-800-63b", "--length", "8", "--no-upper", "--no-digits",
            "--no-special", "--exclude", string.ascii_lowercase.replace("q", ""),
        ],
    ],
)  # fmt: skip
def test_the_cli_refuses_in_one_line_with_exit_2(
    capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    assert main(argv) == 2
    captured = capsys.readouterr()
    one_line_error(captured.err, "preset_not_met")
    assert "floor of" in captured.err and captured.out == ""


# --- each rule on its own ----------------------------------------------------------------


def test_the_floor_bites_even_when_every_class_keeps_its_minimum() -> None:
    # 20 + 20 + 4 + 8 = 52 characters, every class at its minimum: 16 characters of it
    # have 90.62 bits, under SOC 2's 95.27; one more character clears it.
    exclude = keep_only(
        string.ascii_uppercase[:20], string.ascii_lowercase[:20], "3479", "!@#$%^&*"
    )
    short = GenerationParameters.for_preset("hipaa", length=16, exclude=exclude)
    assert "hipaa" in standards_met(short)
    with pytest.raises(PresetNotMet, match=r"exact entropy 90\.62 bits is below the soc2 floor"):
        check_preset("soc2", short)
    longer = GenerationParameters.for_preset("soc2", length=17, exclude=exclude)
    assert exact_entropy_bits(longer) >= 95.27 and "soc2" in standards_met(longer)


@pytest.mark.parametrize("name", CLASS_NAMES)
def test_a_class_below_its_minimum_is_refused_and_at_it_accepted(name: str) -> None:
    need = CLASS_MINIMUMS[name]
    full = {
        "upper": string.ascii_uppercase,
        "lower": string.ascii_lowercase,
        "digits": string.digits,
        "special": DEFAULT_SPECIALS,
    }
    at_minimum = dict(full, **{name: full[name][:need]})
    below = dict(full, **{name: full[name][: need - 1]})
    # Long enough that the entropy floor is never the reason.
    ok = GenerationParameters.for_preset("soc2", length=40, exclude=keep_only(**at_minimum))
    assert len(ok.pool().classes[name]) == need
    with pytest.raises(PresetNotMet) as caught:
        GenerationParameters.for_preset("soc2", length=40, exclude=keep_only(**below))
    assert f"{name} has {need - 1} distinct character(s) after exclusions, below the soc2 " \
        f"minimum of {need}" in caught.value.message  # fmt: skip


def test_an_allowed_but_not_required_class_counts_too() -> None:
    # NIST requires no class, but a digit class shrunk to '7' is still a known character.
    params = GenerationParameters(length=30, exclude=string.digits.replace("7", ""))
    assert exact_entropy_bits(params) > 47.63
    assert "digits has 1 distinct character(s)" in params.shortfall(get_preset("nist-800-63b"))
    assert "nist-800-63b" not in standards_met(params)
    with pytest.raises(PresetNotMet, match="special has 3 distinct"):
        GenerationParameters.for_preset("nist-800-63b", special_chars="-_.")


def test_a_small_pool_is_refused_even_when_length_reaches_the_floor() -> None:
    # 30 digits: 99.66 bits, past NIST's floor, but a 10-character pool is a PIN.
    pin = GenerationParameters(length=30, upper=False, lower=False, special=False)
    assert exact_entropy_bits(pin) > 89.31
    assert pin.shortfall(get_preset("nist-800-63b")) == (
        "the pool has 10 distinct character(s) after exclusions, below the nist-800-63b minimum of 20"
    )
    # One whole letter class is a pool NIST accepts.
    lower = GenerationParameters(length=20, upper=False, digits=False, special=False)
    assert standards_met(lower) == ["nist-800-63b", "nist-800-63b-4-single-factor"]


def test_the_look_alike_exclusion_stays_usable_with_every_preset() -> None:
    # The class minimums were chosen so the product's own readability option never
    # conflicts with a preset (it leaves 20 upper, 24 lower, 4 digits, 28 specials).
    for preset in list_presets():
        params = GenerationParameters.for_preset(preset, exclude_lookalikes=True)
        assert preset.id in standards_met(params)


# --- the property --------------------------------------------------------------------------

_printable = st.characters(min_codepoint=0x21, max_codepoint=0x7E)


@st.composite
def parameter_sets(draw: st.DrawFn) -> GenerationParameters | None:
    # Mostly enabled, mostly required: the presets with composition rules need both.
    toggles = draw(st.lists(st.sampled_from([True] * 7 + [False]), min_size=4, max_size=4))
    mins = draw(st.lists(st.sampled_from([0, 1, 1, 1, 1, 2, 3]), min_size=4, max_size=4))
    special_chars = draw(
        st.none() | st.text(alphabet=st.sampled_from(DEFAULT_SPECIALS), min_size=1, max_size=12)
    )
    # Exclusions that reach every size of class, from none to all but one character.
    exclude = draw(
        st.just("")
        | st.text(alphabet=_printable, max_size=90)
        | st.builds(
            lambda u, lo, d, s: keep_only(u, lo, d, s),
            st.text(alphabet=st.sampled_from(string.ascii_uppercase), min_size=1, max_size=26),
            st.text(alphabet=st.sampled_from(string.ascii_lowercase), min_size=1, max_size=26),
            st.text(alphabet=st.sampled_from(string.digits), min_size=1, max_size=10),
            st.text(alphabet=st.sampled_from(DEFAULT_SPECIALS), min_size=1, max_size=32),
        )
    )
    try:
        return GenerationParameters(
            length=draw(st.integers(1, 40) | st.integers(12, 24)),
            upper=toggles[0],
            lower=toggles[1],
            digits=toggles[2],
            special=toggles[3],
            min_upper=mins[0] if toggles[0] else 0,
            min_lower=mins[1] if toggles[1] else 0,
            min_digits=mins[2] if toggles[2] else 0,
            min_special=mins[3] if toggles[3] else 0,
            min_classes_present=draw(st.integers(0, 4)),
            special_chars=special_chars if toggles[3] else None,
            exclude=exclude,
            exclude_lookalikes=draw(st.booleans()),
        )
    except InvalidParameters:
        return None  # contradictory on their own: not what this property is about


@settings(max_examples=300, deadline=None)
@given(params=parameter_sets())
def test_no_accepted_parameter_set_is_under_its_presets_floor_or_class_minimums(
    params: GenerationParameters | None,
) -> None:
    if params is None:
        return
    met = set(standards_met(params))
    for preset in list_presets():
        try:
            check_preset(preset, params)
        except PresetNotMet:
            assert preset.id not in met
            continue
        assert preset.id in met
        outcomes_bits = round(math.log2(max(1, count_outputs(params))), 2)
        assert outcomes_bits >= preset.entropy_floor.bits
        pool = params.pool()
        for name, chars in pool.classes.items():
            assert len(chars) >= preset.min_pool.of(name)
        assert pool.size >= preset.min_pool.total
