"""Seed-compatible claims (issue #16, item 5): certificates name standards by claim id.

Preset ids (``soc2``) stay the input everywhere; certificates say ``SOC2``. Every
reader accepts both, because certificates issued before the claim ids say ``soc2``.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest

from passgeni_core import (
    CertificateClaims,
    UnknownPreset,
    claim_id_for,
    get_preset,
    list_presets,
    preset_id_for,
    same_standard,
)
from passgeni_core.audit import parse_standards
from passgeni_core.client import AuthorityClient
from passgeni_core.crypto import Credential
from passgeni_core.stores import CertificateRefs, MemoryStore, parse_store_uri, write_proof
from passgeni_core.testing import FakeAuthority
from passgeni_core.workflows import assess

#: The identifiers of the seed's published verification recipe.
SEED_IDS = {
    "nist-800-63b": "NIST-800-63B",
    "nist-800-63b-4-single-factor": "NIST-800-63B-4-SF",
    "hipaa": "HIPAA",
    "pci-dss": "PCI-DSS",
    "soc2": "SOC2",
    "iso-27001": "ISO-27001",
    "fips-140-3": "FIPS-140-3",
}


def test_every_preset_carries_the_seeds_claim_id() -> None:
    assert {p.id: p.claim_id for p in list_presets()} == SEED_IDS
    for preset in list_presets():
        assert preset.to_dict()["claim_id"] == SEED_IDS[preset.id]


@pytest.mark.parametrize(("preset", "claim"), sorted(SEED_IDS.items()))
def test_either_name_finds_the_preset(preset: str, claim: str) -> None:
    assert get_preset(preset) is get_preset(claim)
    assert preset_id_for(claim) == preset_id_for(preset) == preset
    assert claim_id_for(preset) == claim_id_for(claim) == claim
    assert same_standard(preset, claim) and same_standard(claim, preset)


def test_names_no_preset_has_only_equal_themselves() -> None:
    assert preset_id_for("made-up-standard") == claim_id_for("made-up-standard")
    assert same_standard("made-up-standard", "made-up-standard")
    assert not same_standard("made-up-standard", "soc2")
    assert not same_standard("SOC2", "HIPAA")
    # Exact spelling only: a look-alike is not a standard.
    assert not same_standard("Soc2", "soc2")
    with pytest.raises(UnknownPreset, match="unknown preset 'Soc2'"):
        get_preset("Soc2")


def _claims(standard: str, met: tuple[str, ...]) -> CertificateClaims:
    return CertificateClaims.build(
        issuer="passgeni.ai",
        subject="u",
        cert_id="pg_x",
        compliance_standard=standard,
        standards_met=met,
        entropy_bits=104.59,
        parameters={"length": 20},
        entropy_source={"api": "os.urandom"},
        mapping_version="2026.12-1",
        issued_at=datetime.now(UTC),
    )


@pytest.mark.parametrize(
    "claims",
    [
        _claims("SOC2", ("NIST-800-63B", "HIPAA", "PCI-DSS", "SOC2")),  # new
        _claims("soc2", ("nist-800-63b", "hipaa", "pci-dss", "soc2")),  # before claim ids
    ],
)
def test_claims_read_the_same_in_either_form(claims: CertificateClaims) -> None:
    for name in ("soc2", "SOC2"):
        assert claims.certified_for(name)
    for name in ("pci-dss", "PCI-DSS", "nist-800-63b", "NIST-800-63B"):
        assert claims.meets(name)
    assert not claims.certified_for("hipaa") and not claims.meets("fips-140-3")
    assert not claims.meets("FIPS-140-3") and not claims.meets("made-up-standard")


def test_policy_standards_accept_claim_ids() -> None:
    # `passgeni policy` reads the standards of certificates: old and new ones together.
    assert [p.id for p in parse_standards("SOC2,hipaa,soc2,PCI-DSS")] == [
        "hipaa",
        "pci-dss",
        "soc2",
    ]


@pytest.mark.parametrize(
    ("standard", "met"),
    [("PCI-DSS", ("NIST-800-63B", "PCI-DSS")), ("pci-dss", ("nist-800-63b", "pci-dss"))],
)
def test_the_judge_accepts_old_and_new_certificates(standard: str, met: tuple[str, ...]) -> None:
    authority, store = FakeAuthority(), MemoryStore()
    uri = parse_store_uri("memory://app/db#password")
    plan = store.prepare(uri)
    credential = Credential.create("correct horse battery staple")
    issued = authority.issue(
        credential, target=uri.target(store.system, plan.next_version), preset=standard,
        standards_met=met,
    )  # fmt: skip
    refs = CertificateRefs(
        cert_id=issued.cert_id,
        cert_url=authority.cert_url(issued.cert_id),
        standard=standard,
        expires_at=datetime.fromtimestamp(issued.payload["exp"], UTC),
        version=plan.next_version,
    )
    write_proof(store, plan, credential, refs)  # the proof record first
    version = store.write(plan, credential, refs)
    store.write_metadata(uri, dataclasses.replace(refs, version=version))
    current = store.read(uri)
    assert current is not None
    client: AuthorityClient
    with authority.client() as client:
        for asked in ("pci-dss", "PCI-DSS"):
            verdict = assess(client, store.system, current, require=asked, preset=asked)
            assert verdict.status == "valid", verdict.detail
            # The verdict shows the certificate's own words.
            assert verdict.standard == standard and verdict.standards_met == met
        short = assess(client, store.system, current, require="SOC2", preset="soc2")
        assert short.status == "below_requirement"
        assert set(short.reasons) == {"standard_not_met", "standard_mismatch"}
