"""Parameter validation: every contradictory input is refused with a clear message."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, strategies as st

from passgeni_core import (
    MAPPING_VERSION,
    MAX_LENGTH,
    ConflictingParameters,
    GenerationParameters,
    InvalidParameters,
    LengthOutOfRange,
    PresetNotMet,
    UnknownPreset,
    get_preset,
    list_presets,
    standards_met,
)


@pytest.mark.parametrize("length", [0, -1, -(10**9), MAX_LENGTH + 1, 10**9, 10**30])
def test_absurd_lengths_are_refused(length: int) -> None:
    with pytest.raises(LengthOutOfRange, match="length must be between 1 and 256"):
        GenerationParameters(length=length)


@pytest.mark.parametrize("length", ["12", 12.0, None, True, [12]])
def test_non_integer_lengths_are_refused(length: object) -> None:
    with pytest.raises(InvalidParameters, match="length must be an integer"):
        # Non-integers on purpose: the runtime validation is under test.
        GenerationParameters(length=length)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"digits": False, "min_digits": 2}, "min_digits is 2 but digits is disabled"),
        (
            {"min_upper": 5, "min_lower": 5, "min_digits": 5},
            "minimums add up to 15, more than the length 12",
        ),
        (
            {"upper": False, "lower": False, "digits": False, "special": False},
            "no character class is enabled",
        ),
        ({"exclude": "0123456789"}, "every digits character is excluded"),
        ({"special": False, "special_chars": "!#"}, "special_chars is set but special is disabled"),
        (
            {"upper": False, "lower": False, "min_classes_present": 3},
            "min_classes_present is 3 but only 2",
        ),
    ],
)
def test_contradictions_name_the_conflict(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConflictingParameters, match=message):
        # Wrong or conflicting values on purpose: the runtime validation is under test.
        GenerationParameters(length=12, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("exclude", "é", "U\\+00E9"),
        ("exclude", "\x00", "U\\+0000"),
        ("special_chars", "!\u200b", "U\\+200B"),
        ("special_chars", "! ", "U\\+0020"),
        ("special_chars", "!a", "letters or digits"),
        ("special_chars", "", "must not be empty"),
        ("min_digits", -1, "must not be negative"),
        ("upper", "yes", "upper must be true or false"),
        ("exclude", "x" * 300, "too long"),
    ],
)
def test_bad_values_are_refused(field: str, value: object, message: str) -> None:
    with pytest.raises(InvalidParameters, match=message):
        # Wrong or conflicting values on purpose: the runtime validation is under test.
        GenerationParameters(length=16, **{field: value})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("preset", "kwargs", "message"),
    [
        ("hipaa", {"length": 11}, "requires at least 12 characters"),
        ("soc2", {"special": False}, "requires special characters, but special is disabled"),
        ("fips-140-3", {"exclude": "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"}, "cannot be met"),
        ("pci-dss", {"upper": False, "lower": False}, "cannot be met"),
    ],
)
def test_preset_requirements_the_parameters_cannot_meet(
    preset: str, kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(PresetNotMet, match=message):
        # Wrong or conflicting values on purpose: the runtime validation is under test.
        GenerationParameters.for_preset(preset, **kwargs)  # type: ignore[arg-type]


def test_unknown_preset_lists_the_valid_ones() -> None:
    with pytest.raises(UnknownPreset, match="valid presets: nist-800-63b"):
        get_preset("sox")


def test_from_dict_is_strict() -> None:
    with pytest.raises(InvalidParameters, match="unknown parameter"):
        GenerationParameters.from_dict({"length": 12, "password": "x"})
    with pytest.raises(InvalidParameters, match="'length' is required"):
        GenerationParameters.from_dict({})
    with pytest.raises(InvalidParameters, match="JSON object"):
        GenerationParameters.from_dict([12])
    params = GenerationParameters.for_preset("iso-27001")
    assert GenerationParameters.from_dict(params.to_dict()) == params


def test_standards_met_lists_every_standard_not_only_the_requested_one() -> None:
    params = GenerationParameters.for_preset("fips-140-3", length=20)
    assert standards_met(params) == [p.id for p in list_presets()]
    assert standards_met(GenerationParameters.for_preset("hipaa", length=12)) == [
        "nist-800-63b",
        "hipaa",
        "pci-dss",
    ]


def test_pci_three_of_four_does_not_claim_four_class_standards() -> None:
    params = GenerationParameters.for_preset("pci-dss", length=16)
    met = standards_met(params)
    assert "pci-dss" in met
    assert "soc2" not in met and "hipaa" not in met


def test_fips_claim_follows_the_strict_setting() -> None:
    from passgeni_core import EntropySource

    params = GenerationParameters.for_preset("fips-140-3")
    plain = EntropySource(fips_mode=False)
    fips = EntropySource(fips_mode=True)
    assert "fips-140-3" in standards_met(params, entropy_source=plain)
    assert "fips-140-3" not in standards_met(params, entropy_source=plain, fips_strict=True)
    assert "fips-140-3" in standards_met(params, entropy_source=fips, fips_strict=True)


def test_the_table_is_data_with_a_citation_and_honesty_note_per_row() -> None:
    assert MAPPING_VERSION
    ids = {p.id for p in list_presets()}
    assert {"nist-800-63b", "hipaa", "pci-dss", "soc2", "iso-27001", "fips-140-3"} <= ids
    assert "nist-800-63b-4-single-factor" in ids
    for preset in list_presets():
        assert preset.citation and preset.honesty_note
    assert get_preset("nist-800-63b-4-single-factor").min_length == 15
    assert "8.3.6" in get_preset("pci-dss").honesty_note
    assert "not a password profile" in get_preset("fips-140-3").honesty_note


def test_detect_entropy_source_reads_the_kernel_flag(tmp_path: Path) -> None:
    from passgeni_core import detect_entropy_source

    flag = tmp_path / "fips_enabled"
    flag.write_text("1\n")
    assert detect_entropy_source(fips_flag_path=flag).fips_mode is True
    flag.write_text("0\n")
    assert detect_entropy_source(fips_flag_path=flag).fips_mode is False
    assert detect_entropy_source(fips_flag_path=flag.with_name("missing")).fips_mode is False


@given(
    length=st.integers(-5, 300),
    mins=st.lists(st.integers(-1, 30), min_size=4, max_size=4),
    toggles=st.lists(st.booleans(), min_size=4, max_size=4),
    exclude=st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=40),
    r=st.integers(0, 5),
)
def test_validation_either_accepts_satisfiable_parameters_or_raises_a_coded_error(
    length: int, mins: list[int], toggles: list[bool], exclude: str, r: int
) -> None:
    kwargs = dict(
        length=length,
        upper=toggles[0],
        lower=toggles[1],
        digits=toggles[2],
        special=toggles[3],
        min_upper=mins[0],
        min_lower=mins[1],
        min_digits=mins[2],
        min_special=mins[3],
        exclude=exclude,
        min_classes_present=r,
    )
    try:
        # Generated values, some invalid on purpose (the validation is under test).
        params = GenerationParameters(**kwargs)  # type: ignore[arg-type]
    except InvalidParameters as exc:
        assert exc.code and "\n" not in exc.message
        return
    from passgeni_core import count_outputs

    # Accepted parameters are always satisfiable.
    assert count_outputs(params) > 0
