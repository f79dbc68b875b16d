"""The enumerated ``entropy_source`` schema (issue #16 item 4): no free text in a certificate.

A client's declaration of its randomness takes values from fixed sets and strict patterns;
anything else is refused with ``invalid_entropy_source`` naming the field, in the core, the
client and (see tests/unit/passgeni_authority/test_declared_observed.py) the authority.
Readers still accept what older certificates carry.
"""

from __future__ import annotations

import string
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings, strategies as st

from passgeni_core import (
    CertificateClaims,
    EntropySource,
    InvalidEntropySource,
    InvalidParameters,
    detect_entropy_source,
)
from passgeni_core.model import ENTROPY_APIS, KERNEL_SOURCES, read_fips_flag

THE_ISSUE_S_LIE = {"api": "Thales Luna HSM (FIPS 140-3 L3 cert #9999)", "fips_mode": True}


def test_the_issue_s_free_text_hsm_is_refused_naming_the_field() -> None:
    with pytest.raises(InvalidEntropySource, match=r"entropy_source\.api must be one of") as err:
        EntropySource.from_dict(THE_ISSUE_S_LIE)
    # A leaf of InvalidParameters with its own code, answered 400 by the authority.
    assert isinstance(err.value, InvalidParameters)
    assert (err.value.code, err.value.http_status) == ("invalid_entropy_source", 400)
    assert "\n" not in err.value.message


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("kernel_source", "RDRAND on an HSM", r"entropy_source\.kernel_source must be one of"),
        ("platform", "HSM firmware 7 (FIPS validated)", r"entropy_source\.platform must be"),
        ("python", "cpython 3.11.2 FIPS edition", r"entropy_source\.python must be"),
        ("fips_mode", "yes", r"entropy_source\.fips_mode must be true or false"),
        ("api", 7, r"entropy_source\.api must be one of .*\(got int\)"),
        ("vendor", "Thales", r"unknown entropy_source field\(s\): vendor"),
    ],
)
def test_every_field_is_enumerated_or_patterned(field: str, value: Any, message: str) -> None:
    with pytest.raises(InvalidEntropySource, match=message):
        EntropySource.from_dict({field: value})
    # The dataclass itself holds the same schema: no way around it from Python.
    if field not in ("vendor", "fips_mode"):
        with pytest.raises(InvalidEntropySource):
            EntropySource(**{field: value})


def test_known_values_parse_including_the_browser_generator() -> None:
    browser = EntropySource.from_dict(
        {"api": "crypto.getRandomValues", "kernel_source": "platform CSPRNG", "fips_mode": False}
    )
    assert browser.api == "crypto.getRandomValues" and browser.python == ""
    full = {
        "api": "os.urandom",
        "kernel_source": "getrandom(2)",
        "fips_mode": True,
        "platform": "Linux 6.1.0-18-amd64",
        "python": "cpython 3.11.2",
    }
    assert EntropySource.from_dict(full).to_dict() == full
    assert EntropySource.from_dict({}) == EntropySource()
    assert EntropySource().describe() == "os.urandom over getrandom(2), FIPS mode: no"


def test_detection_fits_the_schema_and_reads_an_injected_flag(tmp_path: Path) -> None:
    flag = tmp_path / "fips_enabled"
    flag.write_text("1\n")
    detected = detect_entropy_source(fips_flag_path=flag)
    assert detected.fips_mode is True
    assert EntropySource.from_dict(detected.to_dict()) == detected
    assert detect_entropy_source(fips_flag_path=flag, api="secrets").api == "secrets"
    assert read_fips_flag(tmp_path / "missing") is False
    flag.write_bytes(b"\xff\xfe")
    assert read_fips_flag(flag) is False


def test_readers_keep_accepting_the_free_text_of_older_certificates() -> None:
    payload = {
        "iss": "https://authority.example",
        "sub": "u",
        "iat": 1,
        "nbf": 1,
        "exp": 2,
        "jti": "pg_old",
        "cert_version": "2.0",
        "compliance_standard": "soc2",
        "standards_met": ["soc2"],
        "entropy_bits": 100.0,
        "parameters": {"length": 20},
        "entropy_source": THE_ISSUE_S_LIE,
        "mapping_version": "2026.11",
    }
    claims = CertificateClaims.from_payload(payload)
    assert claims.entropy_source == THE_ISSUE_S_LIE
    assert claims.provenance is None
    # ... and say it does not fit the schema, so no reader shows it as an enumerated fact.
    assert EntropySource.from_claim(claims.entropy_source) is None


_TEXT = st.text(alphabet=string.printable + "éü\u2028", max_size=80)


@settings(max_examples=300, deadline=None)
@given(
    data=st.dictionaries(
        st.sampled_from(["api", "kernel_source", "fips_mode", "platform", "python", "x"]),
        st.one_of(
            _TEXT,
            st.sampled_from([*ENTROPY_APIS, *KERNEL_SOURCES, "Linux 6.1.0", "cpython 3.12.1"]),
            st.booleans(),
            st.integers(),
            st.none(),
        ),
    )
)
def test_the_parser_accepts_only_the_schema(data: dict[str, Any]) -> None:
    try:
        source = EntropySource.from_dict(data)
    except InvalidEntropySource as exc:
        assert exc.message and "\n" not in exc.message
        return
    assert source.api in ENTROPY_APIS and source.kernel_source in KERNEL_SOURCES
    assert isinstance(source.fips_mode, bool)
    for text in (source.platform, source.python):
        assert len(text) <= 80 and "(" not in text and "#" not in text
    # A parsed declaration round-trips: what a certificate states is what was parsed.
    assert EntropySource.from_dict(source.to_dict()) == source
