"""The certified generator ``passgeni-shake256-v1`` and the generation proof.

Checked against the published test vectors (read from docs/generator.md), against an
independent reimplementation of the rejection path written from that document, for
uniformity on both sampler paths (chi-square, ALPHA as in test_generator.py), and through
the proof: a stored value is proven only when its seed re-derives it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from passgeni_core import (
    GENERATOR_ID,
    GenerationParameters,
    ProvenanceMismatch,
    breach_list,
    derive_password,
    entropy_report,
    seed_commitment,
    verify_certificate,
    verify_credential,
    verify_provenance,
)
from passgeni_core.crypto import JWKS, Credential
from passgeni_core.model import CLASS_NAMES, Sampler, XofStream, canonical_parameters, new_seed
from passgeni_core.stores import MemoryStore, parse_store_uri, write_proof
from passgeni_core.testing import FakeAuthority, IssuedToken
from passgeni_core.workflows import prove_credential
from tests.support import REPO_ROOT
from tests.unit.passgeni_core.test_generator import (
    ALPHA,
    SMALL,
    SMALL_SPACE,
    _uniformity_pvalue,
    parameter_sets,
)

VECTORS = REPO_ROOT / "docs" / "generator.md"


def _published_vectors() -> list[tuple[str, dict[str, object], bytes, bytes, str, str]]:
    rows = []
    for line in VECTORS.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
        if len(cells) == 6 and cells[1].startswith("`{"):
            name, params, seed, nonce, commitment, password = (
                c.strip("`").replace("\\|", "|") for c in cells
            )
            rows.append(
                (
                    name,
                    json.loads(params),
                    bytes.fromhex(seed),
                    bytes.fromhex(nonce),
                    commitment,
                    password,
                )
            )
    return rows


def test_the_document_publishes_vectors_for_both_sampler_paths() -> None:
    vectors = _published_vectors()
    assert len(vectors) == 3
    paths = {Sampler(GenerationParameters.from_dict(p)).use_exact for _, p, *_ in vectors}
    assert paths == {True, False}


@pytest.mark.parametrize("vector", _published_vectors(), ids=lambda v: v[0])
def test_published_vectors(vector: tuple[str, dict[str, object], bytes, bytes, str, str]) -> None:
    _, raw, seed, nonce, commitment, password = vector
    params = GenerationParameters.from_dict(raw)
    assert json.loads(canonical_parameters(params)) == raw
    assert canonical_parameters(params).decode() == json.dumps(
        raw, sort_keys=True, separators=(",", ":")
    )
    assert seed_commitment(seed) == commitment
    assert derive_password(params, seed, nonce) == password


def _reference(params: GenerationParameters, seed: bytes, nonce: bytes) -> str:
    """The rejection path as docs/generator.md describes it, written independently."""
    message = b"passgeni generator v1\x00" + seed + nonce
    message += json.dumps(params.to_dict(), sort_keys=True, separators=(",", ":")).encode()
    pool = params.pool().classes
    alphabet = "".join(pool[name] for name in CLASS_NAMES if name in pool)
    size = len(alphabet)
    limit = 256 - 256 % size
    banned = breach_list() if params.breach_check else frozenset()
    want = 4096
    while True:
        chars = [alphabet[b % size] for b in hashlib.shake_256(message).digest(want) if b < limit]
        n = params.length
        for start in range(0, len(chars) - n + 1, n):
            candidate = "".join(chars[start : start + n])
            if params.admits(candidate) and candidate not in banned:
                return candidate
        want *= 4  # not found in this prefix: the same stream, longer


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(params=parameter_sets(), seed=st.binary(min_size=32, max_size=32))
def test_the_rejection_path_matches_an_independent_implementation(
    params: GenerationParameters, seed: bytes
) -> None:
    if Sampler(params).use_exact:
        return  # the exact path is checked by its vector and its uniformity
    nonce = hashlib.sha256(seed).digest()
    assert derive_password(params, seed, nonce) == _reference(params, seed, nonce)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(params=parameter_sets())
def test_derived_passwords_meet_their_constraints_and_are_deterministic(
    params: GenerationParameters,
) -> None:
    seed, nonce = new_seed(), os.urandom(32)
    password = derive_password(params, seed, nonce)
    assert params.admits(password) and password not in breach_list()
    assert derive_password(params, seed, nonce) == password
    # Seed, nonce and parameters each change the stream.
    others = {
        derive_password(params, new_seed(), nonce),
        derive_password(params, seed, os.urandom(32)),
    }
    if entropy_report(params).bits >= 40:  # a repeat is then a bug, not chance
        assert password not in others


def test_the_stream_does_not_depend_on_how_it_is_read() -> None:
    whole = XofStream(b"x").read(3000)
    stream = XofStream(b"x")
    parts = b"".join(stream.read(n) for n in (1, 7, 500, 0, 1200, 1292))
    assert parts == whole == hashlib.shake_256(b"x").digest(3000)


def _derived_space(sampler: Sampler, count: int) -> list[str]:
    out = []
    for _ in range(count):
        stream = XofStream(
            b"passgeni generator v1\x00" + os.urandom(64) + canonical_parameters(SMALL)
        )
        out.append(sampler.derive(stream.read))
    return out


def test_the_rejection_path_is_uniform_over_every_valid_string() -> None:
    sampler = Sampler(SMALL)
    assert not sampler.use_exact
    assert _uniformity_pvalue(_derived_space(sampler, 174 * 200), SMALL_SPACE) > ALPHA


def test_the_exact_path_is_uniform_over_every_valid_string() -> None:
    sampler = Sampler(SMALL)
    sampler.use_exact = True
    assert _uniformity_pvalue(_derived_space(sampler, 174 * 200), SMALL_SPACE) > ALPHA


def test_seeds_and_nonces_have_their_size() -> None:
    params = GenerationParameters.for_preset("soc2")
    with pytest.raises(ValueError, match="32 bytes"):
        derive_password(params, b"short", os.urandom(32))
    with pytest.raises(ValueError, match="32 bytes"):
        derive_password(params, new_seed(), b"")
    assert GENERATOR_ID == "passgeni-shake256-v1"


# --- the proof -----------------------------------------------------------------------------------


def _verified(authority: FakeAuthority, token: str) -> object:
    return verify_certificate(
        token, JWKS.from_dict(authority.jwks_document()), issuer=authority.issuer
    )


def test_the_seed_proves_the_generated_value_and_nothing_else() -> None:
    authority = FakeAuthority()
    issued, credential = authority.issue_generated()
    cert = _verified(authority, issued.token)
    assert credential.seed is not None
    assert verify_credential(cert, credential) == "generation"
    with pytest.raises(ProvenanceMismatch, match="changed or chosen by hand"):
        # One character changed (never to itself: a password may already end in "x").
        last = "y" if credential.password.endswith("x") else "x"
        verify_provenance(cert, credential.password[:-1] + last, credential.seed)
    with pytest.raises(ProvenanceMismatch, match="not the one committed"):
        verify_provenance(cert, credential.password, new_seed())
    with pytest.raises(ProvenanceMismatch, match="no seed"):
        verify_credential(cert, Credential.create(credential.password))


def test_a_chosen_password_with_a_fresh_seed_cannot_match() -> None:
    # The hostile auditee of issue #16: certify, then store a password of their choice.
    authority = FakeAuthority()
    issued, credential = authority.issue_generated()
    cert = _verified(authority, issued.token)
    with pytest.raises(ProvenanceMismatch):
        verify_credential(
            cert, Credential.generated("Password123!Password", credential.seed or b"")
        )


def test_an_unknown_generator_is_not_proven() -> None:
    authority = FakeAuthority()
    issued, credential = authority.issue_generated(
        claims={
            "generation": {
                "generator": "someone-else-v9",
                "seed_commitment": "A" * 43,
                "nonce": "B" * 43,
            }
        }
    )
    with pytest.raises(ProvenanceMismatch, match="cannot re-derive"):
        verify_credential(_verified(authority, issued.token), credential)


def test_an_older_certificate_is_binding_only() -> None:
    authority = FakeAuthority()
    credential = Credential.create("correct horse battery staple")
    cert = _verified(authority, authority.issue(credential).token)
    assert verify_credential(cert, credential) == "binding"
    with pytest.raises(ProvenanceMismatch, match="no generation proof"):
        verify_provenance(cert, credential.password, new_seed())


def _stored(
    authority: FakeAuthority,
    store: MemoryStore,
    uri: str,
    credential: Credential,
    issued: IssuedToken,
) -> None:
    from datetime import UTC, datetime

    from passgeni_core.stores import CertificateRefs

    parsed = parse_store_uri(uri)
    plan = store.prepare(parsed)
    payload = issued.payload
    refs = CertificateRefs(
        cert_id=issued.cert_id,
        cert_url=authority.cert_url(issued.cert_id),
        standard=payload["compliance_standard"],
        expires_at=datetime.fromtimestamp(payload["exp"], UTC),
        version=plan.next_version,
    )
    write_proof(store, plan, credential, refs)  # the proof record first
    store.write(plan, credential, refs)


def test_prove_credential_reports_each_outcome() -> None:
    authority = FakeAuthority()
    store = MemoryStore()
    with authority.client() as client:
        uri = "memory://app/db#password"
        target = parse_store_uri(uri).target("memory", "1")
        issued, credential = authority.issue_generated(target=target)
        _stored(authority, store, uri, credential, issued)
        proof = prove_credential(client, store, parse_store_uri(uri))
        assert proof.proven and proof.reason == "proven" and proof.verdict.proof == "generation"
        assert credential.password not in json.dumps(proof.to_dict())

        old_uri = "memory://app/old#password"
        legacy = Credential.create("an older credential")
        old = authority.issue(legacy, target=parse_store_uri(old_uri).target("memory", "1"))
        _stored(authority, store, old_uri, legacy, old)
        binding_only = prove_credential(client, store, parse_store_uri(old_uri))
        assert not binding_only.proven and binding_only.reason == "generation_not_provable"
        assert binding_only.detail.startswith("binding only, generation not provable")

        absent = prove_credential(client, store, parse_store_uri("memory://app/none#password"))
        assert not absent.proven and absent.reason == "no_value"
