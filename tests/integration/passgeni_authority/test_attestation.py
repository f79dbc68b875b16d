"""In-toto attestations (``GET /api/certificates/{id}/attestation``, ``passgeni export
in-toto``) against a served authority, verified offline by two independent DSSE
verifiers: PyPI ``securesystemslib`` and npm ``@sigstore/verify`` (a bundle v0.3 with a
public-key hint). Both refuse a tampered copy; the authority refuses revoked certificates.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from passgeni_core import BadSignature, verify_certificate
from passgeni_core.cli import main
from passgeni_core.crypto import (
    JWKS,
    PAYLOAD_TYPE,
    PREDICATE_TYPE,
    SEED_DIGEST,
    STATEMENT_TYPE,
    b64url_decode,
    pae,
    verify_attestation,
)
from passgeni_core.workflows import provision
from tests.support.authority import Live, live_authority, plain_session
from tests.support.npm_cache import npm_modules

SIGSTORE = {"@sigstore/verify": "3.1.1", "@sigstore/bundle": "4.0.0"}

# Verifies each envelope of stdin's list against the key; prints one verdict per envelope.
SIGSTORE_VERIFY = r"""
const { bundleFromJSON } = require('@sigstore/bundle')
const { Verifier, toSignedEntity, toTrustMaterial } = require('@sigstore/verify')
const { readFileSync } = require('node:fs')

const { envelopes, keyid, spki } = JSON.parse(readFileSync(0, 'utf8'))
const root = { certificateAuthorities: [], timestampAuthorities: [], tlogs: [], ctlogs: [] }
const keys = { [keyid]: { rawBytes: Buffer.from(spki, 'base64'), keyDetails: 'PKIX_ECDSA_P256_SHA_256' } }
const verifier = new Verifier(toTrustMaterial(root, keys), {
  tlogThreshold: 0, ctlogThreshold: 0, timestampThreshold: 0,
})
const out = []
for (const env of envelopes) {
  try {
    const bundle = bundleFromJSON({
      mediaType: 'application/vnd.dev.sigstore.bundle.v0.3+json',
      verificationMaterial: { publicKey: { hint: keyid }, tlogEntries: [],
        timestampVerificationData: { rfc3161Timestamps: [] } },
      dsseEnvelope: env,
    })
    verifier.verify(toSignedEntity(bundle))
    out.push('verified')
  } catch (err) {
    out.push(err.code || err.name || 'error')
  }
}
console.log(JSON.stringify(out))
"""


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    with live_authority(tmp_path_factory.mktemp("attest")) as served:
        yield served


@pytest.fixture
def cli_env(live: Live, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    cfg = tmp_path / "absent-config.toml"
    cfg.write_text("")
    monkeypatch.setenv("PASSGENI_CONFIG", str(cfg))
    monkeypatch.setenv("PASSGENI_URL", live.url)
    monkeypatch.setenv("PASSGENI_API_KEY", live.api_key)
    monkeypatch.delenv("PASSGENI_ISSUER", raising=False)


def _jwks(live: Live) -> dict[str, Any]:
    document: dict[str, Any] = plain_session().get(f"{live.url}/.well-known/jwks.json").json()
    return document


def _public_key(jwk: dict[str, str]) -> ec.EllipticCurvePublicKey:
    numbers = ec.EllipticCurvePublicNumbers(
        int.from_bytes(b64url_decode(jwk["x"]), "big"),
        int.from_bytes(b64url_decode(jwk["y"]), "big"),
        ec.SECP256R1(),
    )
    return numbers.public_key()


def _tampered(envelope: dict[str, Any]) -> list[dict[str, Any]]:
    """Copies an attacker would try: a changed statement, a changed type, a forged keyid."""
    statement = json.loads(base64.b64decode(envelope["payload"]))
    statement["predicate"]["standardsMet"].append("FEDRAMP-HIGH")
    more = copy.deepcopy(envelope)
    more["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    retyped = copy.deepcopy(envelope)
    retyped["payloadType"] = "application/vnd.in-toto+json; v=2"
    truncated = copy.deepcopy(envelope)
    truncated["payload"] = base64.b64encode(base64.b64decode(envelope["payload"])[:-2]).decode()
    return [more, retyped, truncated]


def _issue(live: Live) -> str:
    with live.client() as client:
        return provision(client, "soc2").cert_id


def test_the_endpoint_signs_the_certificates_statement_and_securesystemslib_verifies_it(
    live: Live,
) -> None:
    from securesystemslib.dsse import Envelope
    from securesystemslib.exceptions import VerificationError
    from securesystemslib.signer import SSlibKey

    cert_id = _issue(live)
    answer = plain_session().get(f"{live.url}/api/certificates/{cert_id}/attestation")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("application/vnd.dsse.envelope.v1+json")
    envelope = answer.json()
    jwks = _jwks(live)
    (jwk,) = jwks["keys"]
    assert envelope["payloadType"] == PAYLOAD_TYPE
    assert [s["keyid"] for s in envelope["signatures"]] == [jwk["kid"]]

    # The statement: in-toto v1, the credential with the seed commitment as digest.
    record = plain_session().get(f"{live.url}/api/certificates/{cert_id}").json()
    statement = json.loads(base64.b64decode(envelope["payload"]))
    assert statement["_type"] == STATEMENT_TYPE == "https://in-toto.io/Statement/v1"
    assert statement["predicateType"] == PREDICATE_TYPE
    claims = json.loads(b64url_decode(record["token"].split(".")[1]))
    (subject,) = statement["subject"]
    assert subject["name"] == f"urn:passgeni:certificate:{cert_id}"  # no store: no target
    assert subject["digest"] == {
        SEED_DIGEST: b64url_decode(claims["generation"]["seed_commitment"]).hex()
    }
    predicate = statement["predicate"]
    assert predicate["certificate"]["id"] == cert_id
    assert predicate["certificate"]["url"] == record["cert_url"]
    assert (
        predicate["certificate"]["tokenSha256"]
        == hashlib.sha256(record["token"].encode()).hexdigest()
    )
    assert predicate["standardsMet"] == record["standards_met"]
    assert predicate["parameters"] == record["parameters"]
    assert predicate["entropy"]["bits"] == record["entropy_bits"]
    assert predicate["generation"] == claims["generation"]
    assert predicate["provenance"] == record["provenance"]
    assert predicate["declared"]["entropySource"] == record["entropy_source"]

    # The DER signature over the DSSE PAE, with the JWKS key.
    key = _public_key(jwk)
    sig = base64.b64decode(envelope["signatures"][0]["sig"])
    assert sig[0] == 0x30  # DER SEQUENCE, not the JWS r || s
    key.verify(
        sig, pae(PAYLOAD_TYPE, base64.b64decode(envelope["payload"])), ec.ECDSA(hashes.SHA256())
    )

    # securesystemslib, offline, with the key under its JWKS kid.
    sslib_key = SSlibKey.from_crypto(key, keyid=jwk["kid"])
    verified = Envelope.from_dict(copy.deepcopy(envelope)).verify([sslib_key], 1)
    assert list(verified) == [jwk["kid"]]
    for bad in _tampered(envelope):
        with pytest.raises(VerificationError):
            Envelope.from_dict(copy.deepcopy(bad)).verify([sslib_key], 1)
    # A key under another keyid verifies nothing.
    stranger = SSlibKey.from_crypto(key, keyid="another-kid")
    with pytest.raises(VerificationError):
        Envelope.from_dict(copy.deepcopy(envelope)).verify([stranger], 1)

    # The core's verifier agrees, and ties the statement to the verified certificate.
    cert = verify_certificate(record["token"], JWKS.from_dict(jwks), issuer=live.embedded.issuer)
    done = verify_attestation(envelope, JWKS.from_dict(jwks), certificate=cert)
    assert done.keyid == jwk["kid"] and done.cert_id == cert_id
    for bad in _tampered(envelope):
        with pytest.raises(Exception) as caught:
            verify_attestation(bad, JWKS.from_dict(jwks), certificate=cert)
        assert getattr(caught.value, "code", "") in {"bad_signature", "malformed_token"}


def test_sigstore_verify_checks_the_envelope_offline_and_refuses_tampered_copies(
    live: Live, tmp_path: Path
) -> None:
    modules = npm_modules("sigstore-verify", SIGSTORE)
    if modules is None:
        # Node.js ships on every machine of this project's kind (CI's included), so this
        # runs there; the skip only spares a contributor's machine without Node.
        pytest.skip("Node.js is not installed: @sigstore/verify is a Node.js package")
    cert_id = _issue(live)
    envelope = plain_session().get(f"{live.url}/api/certificates/{cert_id}/attestation").json()
    (jwk,) = _jwks(live)["keys"]
    spki = _public_key(jwk).public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    (tmp_path / "node_modules").symlink_to(modules, target_is_directory=True)
    script = tmp_path / "verify.cjs"
    script.write_text(SIGSTORE_VERIFY)
    run = subprocess.run(
        ["node", str(script)],
        input=json.dumps(
            {
                "envelopes": [envelope, *_tampered(envelope)],
                "keyid": jwk["kid"],
                "spki": base64.b64encode(spki).decode(),
            }
        ),
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    verdicts = json.loads(run.stdout)
    assert verdicts[0] == "verified"
    assert all(v == "SIGNATURE_ERROR" for v in verdicts[1:]), verdicts


@pytest.mark.usefixtures("cli_env")
def test_export_in_toto_writes_the_checked_envelope_of_a_stored_credential(
    live: Live, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from securesystemslib.dsse import Envelope
    from securesystemslib.signer import SSlibKey

    uri = "memory://attest/app#password"
    assert main(["provision", "--preset", "pci-dss", "--store", uri, "--json"]) == 0
    cert_id = json.loads(capsys.readouterr().out)["cert_id"]
    record = plain_session().get(f"{live.url}/api/certificates/{cert_id}").json()
    (tmp_path / "cert.jwt").write_text(record["token"] + "\n")

    by_id, by_token = tmp_path / "by-id.intoto.json", tmp_path / "by-token.intoto.json"
    assert main(["export", "in-toto", cert_id, "--out", str(by_id)]) == 0
    assert f"wrote the in-toto attestation of {cert_id}" in capsys.readouterr().err
    assert (
        main(["export", "in-toto", f"@{tmp_path / 'cert.jwt'}", "--out", str(by_token), "--json"])
        == 0
    )
    summary = json.loads(capsys.readouterr().out)
    assert summary["cert_id"] == cert_id and summary["predicate_type"] == PREDICATE_TYPE
    assert summary["subject"] == "memory://attest/app#password"

    (jwk,) = _jwks(live)["keys"]
    key = SSlibKey.from_crypto(_public_key(jwk), keyid=jwk["kid"])
    for path in (by_id, by_token):
        envelope = json.loads(path.read_text())
        Envelope.from_dict(copy.deepcopy(envelope)).verify([key], 1)
        statement = json.loads(base64.b64decode(envelope["payload"]))
        assert statement["subject"][0]["name"] == uri
        assert statement["predicate"]["declared"]["target"]["path"] == "attest/app#password"
        assert "password" not in json.dumps(statement["predicate"]["parameters"]).lower()

    # Pinned keys that are not the authority's: nothing is written.
    other = ec.generate_private_key(ec.SECP256R1()).public_key()
    pinned = {"keys": [{**jwk, **_jwk_xy(other)}]}
    (tmp_path / "pinned.json").write_text(json.dumps(pinned))
    refused = tmp_path / "refused.json"
    code = main(
        [
            "export",
            "in-toto",
            cert_id,
            "--jwks",
            str(tmp_path / "pinned.json"),
            "--out",
            str(refused),
        ]
    )
    assert code == 1 and not refused.exists()
    assert "bad_signature" in capsys.readouterr().err


def _jwk_xy(key: ec.EllipticCurvePublicKey) -> dict[str, str]:
    n = key.public_numbers()
    enc = lambda v: base64.urlsafe_b64encode(v.to_bytes(32, "big")).rstrip(b"=").decode()  # noqa: E731
    return {"x": enc(n.x), "y": enc(n.y)}


@pytest.mark.usefixtures("cli_env")
def test_a_revoked_certificate_gets_no_attestation(
    live: Live, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cert_id = _issue(live)
    url = f"{live.url}/api/certificates/{cert_id}/attestation"
    assert plain_session().get(url).status_code == 200  # signed, and cached
    with live.client() as client:
        client.revoke(cert_id, "rotated")
    answer = plain_session().get(f"{live.url}/api/certificates/{cert_id}/attestation")
    assert answer.status_code == 410
    assert answer.json()["code"] == "certificate_revoked"
    out = tmp_path / "revoked.json"
    assert main(["export", "in-toto", cert_id, "--out", str(out)]) == 1
    assert "certificate_revoked" in capsys.readouterr().err and not out.exists()
    missing = plain_session().get(f"{live.url}/api/certificates/pg_{'a' * 24}/attestation")
    assert missing.status_code == 404 and missing.json()["code"] == "not_found"


def test_a_statement_not_the_certificates_is_refused_even_if_signed(live: Live) -> None:
    """A validly signed envelope of another certificate does not pass for this one."""
    first, second = _issue(live), _issue(live)
    jwks = JWKS.from_dict(_jwks(live))
    envelope = plain_session().get(f"{live.url}/api/certificates/{first}/attestation").json()
    token = plain_session().get(f"{live.url}/api/certificates/{second}").json()["token"]
    cert = verify_certificate(token, jwks, issuer=live.embedded.issuer)
    verify_attestation(envelope, jwks)  # signed: yes
    with pytest.raises(BadSignature):
        verify_attestation(envelope, jwks, certificate=cert)


def test_an_expired_certificate_gets_no_attestation(tmp_path: Path) -> None:
    from tests.support.authority import running_authority

    with running_authority(tmp_path / "aged") as authority:
        with authority.client() as client:
            cert_id = provision(client, "soc2").cert_id
        with authority.clock.shifted(days=400):  # the authority's now: a year and more later
            answer = plain_session().get(f"{authority.url}/api/certificates/{cert_id}/attestation")
        assert answer.status_code == 410, answer.text
        assert answer.json()["code"] == "certificate_expired"
