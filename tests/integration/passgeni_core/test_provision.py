"""provision()/certify(): generate locally, certify, verify, and never leak a secret.

Two servers:

* the scripted fake (``tests.support.scripted_authority``), to make the authority *lie* (a
  real authority cannot be told to sign the wrong entropy) and to capture bytes;
* the real ``passgeni_authority`` app under uvicorn on 127.0.0.1, behind a
  recording TCP proxy, for the end-to-end contract: every byte the client
  sends passes through the proxy and is searched for the password and the
  binding key in every encoding.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from passgeni_core import (
    AuthorityClient,
    AuthorityError,
    GenerationParameters,
    InvalidRequest,
    IssuedCertificate,
    PresetNotMet,
    ProvenanceMismatch,
    ProvisionResult,
    SessionAlreadyUsed,
    Target,
    UnknownKey,
    UnknownPreset,
    WrongIssuer,
    certify,
    decode_seed,
    encode_seed,
    provision,
    verify_certificate,
    verify_credential,
    verify_provenance,
)
from tests.support.scripted_authority import API_KEY, ScriptedAuthority, secret_forms
from tests.support.seeds import commitment

# --- against the scripted fake (the ``fake`` fixture of this folder's conftest) ----------


def _client(fake: ScriptedAuthority) -> AuthorityClient:
    return AuthorityClient(fake.url, API_KEY, retries=0)


def test_provision_returns_a_verified_bound_certificate(fake: ScriptedAuthority) -> None:
    target = Target(system="vault", path="secret/app/db#password", version="3")
    result = provision(_client(fake), "soc2", target=target, label="db-password")
    assert isinstance(result, ProvisionResult)
    claims = result.verified.claims
    # This fake authority names standards by preset id, as authorities did before the
    # claim ids: provisioning accepts both forms.
    assert claims.compliance_standard == "soc2" and "soc2" in claims.standards_met
    assert claims.parameters == GenerationParameters.for_preset("soc2").to_dict()
    assert claims.target == target and claims.label == "db-password"
    assert result.cert_id == claims.jti and result.token == result.certificate.token
    assert verify_credential(result.verified, result.credential) == "generation"
    assert claims.generation is not None and claims.credential_commitment is None
    assert result.generated.password == result.credential.password


def test_results_never_show_secrets(fake: ScriptedAuthority) -> None:
    result = provision(_client(fake), "nist-800-63b")
    password, key = result.credential.password, result.credential.seed
    for text in (repr(result), str(result), repr(result.generated), str(result.public_dict())):
        for form in secret_forms(password, key):
            assert form.decode("latin-1") not in text


def test_no_secret_byte_ever_reaches_the_authority(fake: ScriptedAuthority) -> None:
    client = _client(fake)
    results = [provision(client, preset) for preset in ("soc2", "pci-dss", "nist-800-63b")]
    assert len(fake.requests_to("/api/generate")) == 3
    assert len(fake.requests_to("/api/generate-certificate")) == 3
    wire = bytes(fake.wire)
    assert b"seed_commitment" in wire  # the capture really saw the bodies
    assert b"credential_commitment" not in wire
    for result in results:
        for form in secret_forms(result.credential.password, result.credential.seed):
            assert form not in wire
        assert result.credential.seed_commitment.encode() in wire


@pytest.mark.parametrize(
    ("lie", "message"),
    [
        (lambda c: c.update(entropy_bits=c["entropy_bits"] + 1), "entropy"),
        (lambda c: c.update(naive_entropy_bits=1.0), "naive entropy"),
        (lambda c: c["parameters"].update(length=99), "parameters"),
        (lambda c: c["standards_met"].append("made-up-standard"), "made-up-standard"),
        (lambda c: c.update(standards_met=[]), "does not list"),
        (lambda c: c.update(compliance_standard="hipaa"), "compliance standard"),
        (lambda c: c.update(credential_commitment="B" * 43), "commitment"),
        (lambda c: c["generation"].update(nonce="C" * 43), "generation proof"),
        (lambda c: c["generation"].update(seed_commitment="D" * 43), "seed commitment"),
        (lambda c: c.pop("generation"), "generation proof"),
        (lambda c: c.update(jti="pg_someone_else"), "token's id"),
        (lambda c: c["entropy_source"].update(fips_mode=True), "entropy source"),
        (lambda c: c.update(label="other"), "label"),
        # Declared versus observed (issue #16 item 4): soc2's defaults meet the FIPS profile,
        # and this client declared no FIPS mode.
        (lambda c: c["provenance"].update(fips_rule="strict-v1"), "under strict-v1 although"),
        (lambda c: c["provenance"].pop("fips_unverified"), "fips_unverified"),
        (lambda c: c["provenance"].update(declared=["target"]), "as observed"),
        (lambda c: c["provenance"].update(fips_rule="trust-me-v1"), "unknown here"),
        (lambda c: c.pop("provenance"), "under no stated rule"),
    ],
)
def test_a_lying_authority_is_caught(fake: ScriptedAuthority, lie: Any, message: str) -> None:
    fake.tamper = lie
    with pytest.raises(AuthorityError, match=message):
        provision(_client(fake), "soc2", label="db")


def test_a_token_from_another_issuer_or_key_is_refused(fake: ScriptedAuthority) -> None:
    fake.tamper = lambda c: c.update(iss="https://evil.example")
    with pytest.raises(WrongIssuer):
        provision(_client(fake), "soc2")
    fake.tamper = None
    fake.kid = "rotated-away"
    client = _client(fake)
    client.jwks()  # cache the old document...
    before = len(fake.requests_to("/.well-known/jwks.json"))
    fake.kid = "k2"  # ...then the authority rotates: one refresh finds the new kid
    assert provision(client, "soc2").verified.kid == "k2"
    assert len(fake.requests_to("/.well-known/jwks.json")) == before + 1


def test_an_unknown_kid_after_refresh_is_refused(
    fake: ScriptedAuthority, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = ScriptedAuthority()
    fake.private = other.private  # signs with a key the JWKS never publishes
    original_jwks = fake.jwks
    monkeypatch.setattr(
        fake, "jwks", lambda: {"keys": [{**original_jwks()["keys"][0], "kid": "elsewhere"}]}
    )
    other.server.server_close()
    with pytest.raises(UnknownKey):
        provision(_client(fake), "soc2")


def test_local_checks_run_before_any_request(fake: ScriptedAuthority) -> None:
    client = _client(fake)
    with pytest.raises(UnknownPreset):
        provision(client, "no-such-preset")
    with pytest.raises(PresetNotMet):
        provision(client, "pci-dss", parameters=GenerationParameters(length=8))
    with pytest.raises(InvalidRequest):
        certify(client, GenerationParameters.for_preset("soc2"), preset="soc2", target={"x": 1})
    assert fake.seen == []


def test_certify_then_write(fake: ScriptedAuthority) -> None:
    """The store flow: generate, certify, and only then write the credential."""
    result = certify(
        _client(fake), GenerationParameters.for_preset("soc2", length=24), preset="soc2"
    )
    credential = result.credential
    assert credential.seed is not None and credential.binding_key is None
    stored = {"password": credential.password, "seed": encode_seed(credential.seed)}
    verify_provenance(result.verified, stored["password"], decode_seed(stored["seed"]))
    with pytest.raises(ProvenanceMismatch):
        verify_provenance(result.verified, stored["password"] + "x", credential.seed)


def test_parameters_as_a_mapping(fake: ScriptedAuthority) -> None:
    params = GenerationParameters.for_preset("soc2", length=30).to_dict()
    result = provision(_client(fake), "soc2", parameters=params)
    assert result.verified.claims.parameters["length"] == 30


# --- against the real authority ---------------------------------------------------------------


class RecordingProxy:
    """A TCP proxy that forwards to ``upstream`` and keeps every client->server byte."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.sent = bytearray()
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._stop = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, record: bool) -> None:
        try:
            while data := src.recv(65536):
                if record:
                    with self._lock:
                        self.sent.extend(data)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def _accept(self) -> None:
        while not self._stop:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            up = socket.create_connection(("127.0.0.1", self.upstream_port))
            threading.Thread(target=self._pipe, args=(conn, up, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(up, conn, False), daemon=True).start()

    def close(self) -> None:
        self._stop = True
        self._listener.close()


@dataclass
class RealAuthority:
    url: str
    api_key: str
    other_key: str
    proxy: RecordingProxy
    service: Any


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def running_authority(state: Path) -> Iterator[RealAuthority]:
    """The real authority app under uvicorn, reached through a recording proxy.

    The proxy's URL is the authority's public URL (the ``iss``), as a reverse
    proxy in front of a real deployment would be. Served defaults
    (``fips_strict=True``) except rate limits, which have their own tests.
    """
    import uvicorn

    from passgeni_authority import AuthorityService, AuthoritySettings, RateLimits, create_app

    port = _free_port()
    proxy = RecordingProxy(port)
    public = f"http://127.0.0.1:{proxy.port}"
    settings = AuthoritySettings(
        public_url=public,
        state_dir=state,
        rate_limits=RateLimits.unlimited(),
        fips_strict=True,
    )
    service = AuthorityService(settings)
    key = service.create_api_key("alice").key
    other = service.create_api_key("mallory").key
    app = create_app(service=service)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the authority did not start")
        time.sleep(0.02)
    try:
        yield RealAuthority(public, key, other, proxy, service)
    finally:
        server.should_exit = True
        thread.join(10)
        proxy.close()
        service.close()


@pytest.fixture(scope="module")
def real_authority(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealAuthority]:
    with running_authority(Path(tmp_path_factory.mktemp("authority"))) as authority:
        yield authority


def test_contract_provision_end_to_end(real_authority: RealAuthority) -> None:
    client = AuthorityClient(real_authority.url, real_authority.api_key)
    target = Target(system="vault", path="secret/app/db#password", version="1")
    result = provision(client, "soc2", target=target, label="db-password")
    claims = result.verified.claims
    assert claims.iss == real_authority.url and claims.target == target
    assert result.cert_url.startswith(real_authority.url + "/cert/")
    assert "?" not in result.cert_url
    # Anyone can re-verify later from the JWKS alone.
    verify_certificate(result.token, client.jwks(refresh=True), issuer=real_authority.url)
    record = client.get_certificate(result.cert_id)
    assert record.status == "valid" and record.token == result.token
    assert record.issued_at == result.certificate.issued_at


def test_contract_no_secret_on_the_wire(real_authority: RealAuthority) -> None:
    client = AuthorityClient(real_authority.url, real_authority.api_key)
    start = len(real_authority.proxy.sent)
    results = [provision(client, p) for p in ("soc2", "nist-800-63b", "pci-dss")]
    wire = bytes(real_authority.proxy.sent[start:])
    assert wire.count(b"POST /api/generate-certificate ") == 3
    for result in results:
        assert result.credential.seed_commitment.encode() in wire
        for form in secret_forms(result.credential.password, result.credential.seed):
            assert form not in wire


def test_contract_served_authority_is_fips_strict(real_authority: RealAuthority) -> None:
    client = AuthorityClient(real_authority.url, real_authority.api_key)
    # Locally meetable, but the served authority never claims FIPS 140-3 off a FIPS host.
    with pytest.raises(PresetNotMet):
        provision(client, "fips-140-3")
    result = provision(client, "soc2")
    assert not result.verified.claims.meets("fips-140-3")
    # The real authority names standards by claim id; provisioning reads them by preset.
    assert result.verified.claims.compliance_standard == "SOC2"
    assert "FIPS-140-3" not in result.verified.claims.standards_met


def test_contract_sessions_are_single_use_and_tenant_bound(real_authority: RealAuthority) -> None:
    alice = AuthorityClient(real_authority.url, real_authority.api_key)
    mallory = AuthorityClient(real_authority.url, real_authority.other_key)
    params = GenerationParameters.for_preset("soc2")
    session = alice.start_generation("soc2", params, seed_commitment=commitment())
    with pytest.raises(AuthorityError) as info:
        mallory.issue_certificate(session.session_id)
    assert info.value.code == "session_invalid"
    first = alice.issue_certificate(session.session_id, label="a")
    # The same request again (a retry after a lost answer): the same certificate.
    assert alice.issue_certificate(session.session_id, label="a").token == first.token
    with pytest.raises(SessionAlreadyUsed):
        alice.issue_certificate(session.session_id, label="b")


def test_contract_batch_and_audit(real_authority: RealAuthority) -> None:
    from passgeni_core import CertificateRequest

    client = AuthorityClient(real_authority.url, real_authority.api_key)
    params = GenerationParameters.for_preset("nist-800-63b")
    sessions = [
        client.start_generation("nist-800-63b", params, seed_commitment=commitment())
        for _ in range(3)
    ]
    results = client.issue_certificates(
        [
            CertificateRequest(session_id=s.session_id, label=f"batch-{i}")
            for i, s in enumerate(sessions)
        ]
        + [CertificateRequest(session_id=sessions[0].session_id)]
    )
    assert [type(r).__name__ for r in results] == ["IssuedCertificate"] * 3 + ["SessionAlreadyUsed"]
    page = client.audit(standard="nist-800-63b", page_size=500)
    ids = {r.cert_id for r in page.items}
    issued = [r for r in results[:3] if isinstance(r, IssuedCertificate)]
    assert len(issued) == 3 and {r.cert_id for r in issued} <= ids
    mallory = AuthorityClient(real_authority.url, real_authority.other_key)
    assert not ids & {r.cert_id for r in mallory.iter_audit()}
