"""`passgeni evidence`: a bundle built from the real authority (and a scan of real
OpenBao), verified offline; one flipped byte in any kind of file fails verification;
a bundle re-signed with someone else's keys fails against the trusted keys."""

from __future__ import annotations

import io
import json
import secrets
import struct
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from passgeni_core import InvalidRequest, build_bundle, verify_bundle
from passgeni_core.crypto import jwk_thumbprint
from passgeni_core.testing import low_s_token
from tests.support import free_port
from tests.support.authority import Live, live_authority
from tests.unit.passgeni_core.auditor_fixtures import clean_env, run

__all__ = ["clean_env"]


@dataclass
class Built:
    live: Live
    bundle: Path
    jwks: Path
    ids: dict[str, str]
    scope: str


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    with live_authority(tmp_path_factory.mktemp("authority")) as authority:
        yield authority


@pytest.fixture(scope="module")
def built(live: Live, openbao: Any, tmp_path_factory: pytest.TempPathFactory) -> Built:
    """Certificates: one stored in Vault, one revoked, one plain; then the bundle."""
    from passgeni_core import open_store, provision, provision_into_store

    tmp = tmp_path_factory.mktemp("evidence")
    prefix = f"ev-{secrets.token_hex(4)}"
    uri = f"vault://secret/{prefix}/db#password"
    with live.client() as client:
        store = open_store(uri, environ={"VAULT_ADDR": openbao.url, "VAULT_TOKEN": openbao.token})
        try:
            stored = provision_into_store(client, store, uri, "soc2", label="db")
        finally:
            store.close()
        revoked = provision(client, "hipaa", label="leaked")
        client.revoke(revoked.cert_id, "leaked in a ticket")
        plain = provision(client, "pci-dss")
        (tmp / "jwks.json").write_text(json.dumps(client.jwks_document()))
    bundle = tmp / "bundle.zip"
    capsys_free = _run_plain(
        "evidence", "--out", str(bundle), "--org", "Example Corp", "--standards", "soc2,hipaa",
        *live.flags(),
    )  # fmt: skip
    assert capsys_free == 0
    return Built(
        live=live,
        bundle=bundle,
        jwks=tmp / "jwks.json",
        ids={"stored": stored.cert_id, "revoked": revoked.cert_id, "plain": plain.cert_id},
        scope=f"vault://secret/{prefix}",
    )


def _run_plain(*argv: str) -> int:
    from contextlib import redirect_stderr, redirect_stdout

    from passgeni_core.cli import main

    with redirect_stdout(io.StringIO()), redirect_stderr(io.StringIO()):
        return main(list(argv))


def _members(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def _middle_of_compressed_data(data: bytes, name: str) -> int:
    """The offset of the middle byte of ``name``'s compressed data in the archive ``data``."""
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        info = zf.getinfo(name)
    start = info.header_offset
    # The local header: 30 fixed bytes, then the name and the extra field (their lengths at 26, 28).
    name_len, extra_len = struct.unpack("<HH", data[start + 26 : start + 30])
    return start + 30 + name_len + extra_len + info.compress_size // 2


def _zip(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, content in members.items():
            zf.writestr(name, content)
    return out.getvalue()


def test_bundle_contents_and_offline_verdicts(
    built: Built, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    members = _members(built.bundle.read_bytes())
    ids = built.ids
    for cert_id in ids.values():
        assert f"certificates/{cert_id}.jwt" in members
    for name in (
        "manifest.json", "manifest.jwt", "keys/jwks-history.json", "status/list-0.jwt",
        "registry/registry.csv", "policy/policy.md", "VERIFY.md",
        "log/checkpoint.txt", "log/log-key.txt", "log/proofs.json",
    ):  # fmt: skip
        assert name in members, name
    manifest = json.loads(members["manifest.json"])
    assert manifest["issuer"] == built.live.url
    assert set(manifest["files"]) == set(members) - {"manifest.json", "manifest.jwt"}
    assert jwt.get_unverified_header(members["manifest.jwt"].decode().strip())["typ"] == (
        "passgeni-manifest+jwt"
    )
    assert b"# Example Corp" in members["policy/policy.md"]
    assert ids["stored"].encode() in members["registry/registry.csv"]
    verify_md = members["VERIFY.md"].decode()
    assert f"passgeni evidence verify bundle.zip --issuer {built.live.url}" in verify_md

    # No network from here: the authority URL points at a closed port.
    monkeypatch.setenv("PASSGENI_URL", f"http://127.0.0.1:{free_port()}")
    argv = ["evidence", "verify", str(built.bundle), "--issuer", built.live.url]
    code, out, _ = run(capsys, *argv, "--jwks", str(built.jwks))
    assert code == 0, out
    assert "AUTHENTIC" in out and "NOT AUTHENTIC" not in out
    lines = {line.split()[0]: line for line in out.splitlines() if line.startswith("pg_")}
    assert "VALID" in lines[ids["stored"]] and "VALID" in lines[ids["plain"]]
    assert "REVOKED" in lines[ids["revoked"]]
    # Who vouches for what (issue #16 item 4): the entropy source is the client's word,
    # the nonce source the authority's observation, FIPS 140-3 under the rule stated.
    said = out.split("declared versus observed:", 1)[1]
    assert f"  {ids['stored']}: declared by the client: os.urandom over" in said
    assert "observed by the authority: parameters re-validated; its nonce from secrets" in said
    assert "FIPS 140-3: listed under rule lenient-v1; not established:" in said

    code, out, _ = run(capsys, *argv, "--json")
    report = json.loads(out)
    assert code == 0 and report["authentic"] and report["counts"] == {"valid": 2, "revoked": 1}
    by_id = {c["cert_id"]: c for c in report["certificates"]}
    sources = by_id[ids["stored"]]["sources"]
    assert sources["declared"].startswith("declared by the client: os.urandom over")
    assert "its host in FIPS mode: no" in sources["observed"]
    assert "the client did not declare FIPS mode" in sources["fips"]
    assert sources["fips_problem"] is None
    assert not any("beyond its rule" in n for n in report["notes"])
    assert any("keys taken from the bundle" in n for n in report["notes"])
    code, _, _ = run(capsys, *argv, "--require-valid")
    assert code == 1  # a revoked certificate falls short when validity is required

    # The transparency log: every certificate is a leaf of the bundle's checkpoint.
    assert manifest["log"] == {
        "key": "log/log-key.txt", "checkpoint": "log/checkpoint.txt", "proofs": "log/proofs.json",
    }  # fmt: skip
    for cert_id in ids.values():
        assert "; log leaf " in by_id[cert_id]["detail"], by_id[cert_id]
    log_key = members["log/log-key.txt"].decode().strip()
    code, out, _ = run(capsys, *argv, "--json", "--log-key", log_key)
    assert code == 0 and not any("log key taken" in n for n in json.loads(out)["notes"])
    from passgeni_core.crypto import NoteSigner

    other = NoteSigner.generate(log_key.split("+")[0]).verifier.key
    code, out, _ = run(capsys, *argv, "--log-key", other)
    assert code == 1 and "not the trusted log key" in out


KINDS = [
    "manifest.json",
    "manifest.jwt",
    "certificates/",
    "keys/jwks-history.json",
    "status/list-0.jwt",
    "registry/registry.csv",
    "policy/policy.md",
    "VERIFY.md",
    "log/checkpoint.txt",
    "log/log-key.txt",
    "log/proofs.json",
]


@pytest.mark.parametrize("kind", KINDS)
def test_one_flipped_byte_in_any_file_fails(
    kind: str, built: Built, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    members = _members(built.bundle.read_bytes())
    name = next(n for n in sorted(members) if n.startswith(kind))
    content = bytearray(members[name])
    position = len(content) // 2
    content[position] ^= 0x01
    members[name] = bytes(content)
    tampered = tmp_path / "tampered.zip"
    tampered.write_bytes(_zip(members))
    try:
        report = verify_bundle(tampered.read_bytes(), issuer=built.live.url)
    except InvalidRequest:
        failed = True  # e.g. the manifest is no longer JSON
    else:
        failed = not report.authentic
    assert failed, f"a flipped byte in {name} went unnoticed"
    code, out, err = run(capsys, "evidence", "verify", str(tampered), "--issuer", built.live.url)
    assert code in (1, 2) and ("NOT AUTHENTIC" in out or "[invalid_request]" in err)


def test_added_removed_and_corrupt_files_fail(built: Built) -> None:
    data = built.bundle.read_bytes()
    members = _members(data)
    added = verify_bundle(_zip({**members, "extra.txt": b"hi"}), issuer=built.live.url)
    assert not added.authentic and any("extra.txt" in p for p in added.problems)
    cert = next(n for n in members if n.startswith("certificates/"))
    removed = verify_bundle(
        _zip({k: v for k, v in members.items() if k != cert}), issuer=built.live.url
    )
    assert not removed.authentic
    wrong_issuer = verify_bundle(data, issuer="https://other.example")
    assert not wrong_issuer.authentic
    # A flipped byte in the archive's compressed stream: the CRC check catches it. The byte
    # is in the middle of a member's compressed data, wherever the layout puts it (a fixed
    # offset may land in a local header field no reader checks, e.g. the flags).
    raw = bytearray(data)
    raw[_middle_of_compressed_data(data, cert)] ^= 0xFF
    try:
        corrupt = verify_bundle(bytes(raw), issuer=built.live.url)
    except InvalidRequest:
        pass
    else:
        assert not corrupt.authentic
    with pytest.raises(InvalidRequest):
        verify_bundle(b"not a zip")
    with pytest.raises(InvalidRequest):
        verify_bundle(_zip({"../escape": b"x", "manifest.json": b"{}", "manifest.jwt": b""}))


def test_a_bundle_re_signed_with_other_keys_fails_against_the_trusted_keys(built: Built) -> None:
    """An attacker can make a self-consistent bundle with their own key; pinning the
    authority's keys (``--jwks``) exposes it."""
    members = _members(built.bundle.read_bytes())
    private = ec.generate_private_key(ec.SECP256R1())
    jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(private.public_key()))
    jwk.update(kid=jwk_thumbprint(jwk), alg="ES256", use="sig")
    stolen = jwt.decode(
        members[f"certificates/{built.ids['revoked']}.jwt"].decode().strip(),
        options={"verify_signature": False},
    )
    stolen.pop("status")  # hide the revocation
    forged = low_s_token(
        jwt.encode(stolen, private, algorithm="ES256", headers={"kid": jwk["kid"]})
    )

    def sign(digest: str) -> str:
        payload = {"iss": built.live.url, "manifest_sha256": digest, "iat": 0}
        headers = {"kid": jwk["kid"], "typ": "passgeni-manifest+jwt"}
        return low_s_token(jwt.encode(payload, private, algorithm="ES256", headers=headers))

    fake = build_bundle(
        issuer=built.live.url,
        certificates=[forged],
        jwks_history={"keys": [jwk]},
        status_lists={},
        registry_csv="",
        policy_md="",
        sign=sign,
    )
    unpinned = verify_bundle(fake, issuer=built.live.url)
    assert unpinned.authentic  # consistent on its own terms...
    assert any(jwk["kid"][:16] in note for note in unpinned.notes)  # ...with the kid shown
    pinned = verify_bundle(fake, issuer=built.live.url, trusted_jwks=built.jwks.read_text())
    assert not pinned.authentic
    assert [v.verdict for v in pinned.verdicts] == ["invalid"]

    # A key whose kid is not its thumbprint is called out.
    liar = dict(jwk, kid="pretty-kid")
    report = verify_bundle(
        _zip({**_members(fake), "keys/jwks-history.json": json.dumps({"keys": [liar]}).encode()}),
        issuer=built.live.url,
    )
    assert not report.authentic


def test_scope_restricts_the_bundle_to_the_scanned_stores(
    built: Built, openbao: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VAULT_ADDR", openbao.url)
    monkeypatch.setenv("VAULT_TOKEN", openbao.token)
    out = tmp_path / "scoped.zip"
    code = _run_plain(
        "evidence", "--out", str(out), "--scope", built.scope, "--since", "2000-01-01",
        *built.live.flags(),
    )  # fmt: skip
    assert code == 0
    report = verify_bundle(out.read_bytes(), issuer=built.live.url)
    assert report.authentic
    assert [v.cert_id for v in report.verdicts] == [built.ids["stored"]]
    members = _members(out.read_bytes())
    assert json.loads(members["manifest.json"])["scopes"] == [built.scope]
    assert b"vault://secret/" in members["registry/registry.csv"]


def test_a_certificate_missing_from_the_log_is_invalid(built: Built) -> None:
    """An authority-signed bundle whose log does not include one of its certificates:
    that certificate is invalid, the others stand."""
    members = _members(built.bundle.read_bytes())
    manifest = json.loads(members["manifest.json"])
    proofs = json.loads(members["log/proofs.json"])
    dropped = built.ids["plain"]
    del proofs["proofs"][dropped]
    tokens = [members[path].decode() for path in manifest["certificates"].values()]
    with built.live.client() as client:
        bundle = build_bundle(
            issuer=built.live.url,
            certificates=tokens,
            jwks_history=json.loads(members["keys/jwks-history.json"]),
            status_lists={},
            registry_csv=members["registry/registry.csv"].decode(),
            policy_md=members["policy/policy.md"],
            sign=client.sign_manifest,
            log={
                "key": members["log/log-key.txt"].decode(),
                "checkpoint": members["log/checkpoint.txt"].decode(),
                "size": proofs["size"],
                "proofs": proofs["proofs"],
            },
        )
    report = verify_bundle(bundle, issuer=built.live.url)
    assert not report.authentic
    by_id = {v.cert_id: v for v in report.verdicts}
    assert by_id[dropped].verdict == "invalid" and by_id[dropped].code == "log_proof_invalid"
    assert "no inclusion proof" in by_id[dropped].detail
    assert by_id[built.ids["stored"]].verdict != "invalid"
