"""Faults around the stores during a rotation, checked on the real servers.

For each store (OpenBao, moto, the Kubernetes emulator) the store fails at
each step of a resumable rotation (``ensure_rotated``, what ``passgeni rotate
--inventory`` runs): before certification, after certification (before the
proof record's write), after the proof record's write (before the secret
write), after the secret write, after the metadata write. Kinds of
fault:

* ``stop``: the server is unreachable from that point (a TCP proxy in front
  of it closes its port and cuts every connection: connection refused, as
  from a stopped server, while the real server keeps its data so we can see
  what survived; OpenBao dev, moto and kmock lose everything when stopped);
* ``refuse``: the store answers every call from that point with an error;
* ``ack-lost``: the step's write lands but its answer is lost.

Then the fault ends ("restart") and the same rotation is re-run. Checked
directly on the real servers and the real authority:

* while the fault holds, the previous credential is still current and
  readable unless the new one was fully written (value + references);
* no stored credential is ever without certificate references;
* every certificate issued for a credential that was never stored is revoked
  (reason ``not stored``);
* the re-run finishes the job: the current credential is certified for the
  new epoch, valid, bound, its metadata complete, and there is exactly one
  current credential (no second rotation, one ``AWSCURRENT``).
"""

from __future__ import annotations

import contextlib
import secrets
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from passgeni_core import (
    AuthorityClient,
    PassgeniError,
    StoreError,
    StoreUnavailable,
    assess,
    available_schemes,
    parse_store_uri,
    verify_certificate,
    verify_credential,
)
from passgeni_core.workflows import ensure_rotated, keeper_label
from tests.reliability._proxy import TcpProxy
from tests.support import KubeEmulator, MotoServer, OpenBaoServer
from tests.support.authority import Authority, running_authority

STEPS = (
    "before-certification",
    "after-certification",
    "after-proof-write",
    "after-secret-write",
    "after-metadata-write",
)
CASES = [(step, kind) for step in STEPS for kind in ("stop", "refuse")] + [
    ("after-proof-write", "ack-lost"),
    ("after-secret-write", "ack-lost"),
    ("after-metadata-write", "ack-lost"),
]
STORES = [s for s in ("vault", "aws-sm", "k8s") if s in available_schemes()]


def test_every_store_backend_is_covered() -> None:
    """The matrix runs on OpenBao and moto, and on the Kubernetes emulator when the
    ``k8s://`` backend is installed (it is, in this repository: no silent skip)."""
    schemes = available_schemes()
    assert {"vault", "aws-sm", "k8s"} <= set(schemes), schemes
    assert STORES == ["vault", "aws-sm", "k8s"]


class Injected(StoreUnavailable):
    pass


class FaultyStore:
    """Wraps a real store; the fault starts at ``step`` and lasts until ``heal()``."""

    def __init__(self, inner: Any, step: str, kind: str, proxy: TcpProxy) -> None:
        self.inner = inner
        self.system = inner.system
        self.step = step
        self.kind = kind
        self.proxy = proxy
        self.fired = False

    def _start(self) -> None:
        self.fired = True
        if self.kind == "stop":
            self.proxy.down()

    def _gate(self) -> None:
        if self.fired and self.kind == "refuse":
            raise Injected(f"the store refuses (injected at {self.step})")

    def heal(self) -> None:
        self.proxy.up()
        self.fired = False
        self.kind = "healed"

    def read(self, uri: Any) -> Any:
        if self.step == "before-certification" and not self.fired:
            self._start()
        self._gate()
        return self.inner.read(uri)

    def prepare(self, uri: Any) -> Any:
        self._gate()
        return self.inner.prepare(uri)

    def check(self, plan: Any, refs: Any) -> None:
        self._gate()
        self.inner.check(plan, refs)

    def write_proof(self, plan: Any, credential: Any, refs: Any) -> None:
        if self.step == "after-certification" and not self.fired:
            self._start()
        self._gate()
        self.inner.write_proof(plan, credential, refs)
        if self.step == "after-proof-write" and not self.fired:
            if self.kind == "ack-lost":
                self.fired = True
                raise Injected("the answer to the proof record's write was lost (injected)")
            self._start()

    def write(self, plan: Any, credential: Any, refs: Any) -> str:
        if self.step == "after-certification" and not self.fired:
            self._start()
        self._gate()
        version: str = self.inner.write(plan, credential, refs)
        if self.step == "after-secret-write" and not self.fired:
            if self.kind == "ack-lost":
                self.fired = True
                raise Injected("the answer to the secret write was lost (injected)")
            self._start()
        return version

    def write_metadata(self, uri: Any, refs: Any) -> None:
        self._gate()
        self.inner.write_metadata(uri, refs)
        if self.step == "after-metadata-write" and not self.fired:
            if self.kind == "ack-lost":
                self.fired = True
                raise Injected("the answer to the metadata write was lost (injected)")
            self._start()

    def list(self, prefix: Any) -> Any:
        self._gate()
        return self.inner.list(prefix)

    def close(self) -> None:
        self.inner.close()


@dataclass
class Backend:
    name: str
    proxy: TcpProxy
    proxied: Any  # the store, through the proxy
    direct: Any  # the same store, straight to the real server (the checks' view)
    server: Any

    def uri(self, case: str) -> str:
        if self.name == "vault":
            return f"vault://secret/faults/{case}#password"
        if self.name == "aws-sm":
            return f"aws-sm://faults/{case}#password"
        return f"k8s://faults/{case}#password"

    def current_count(self, case: str) -> int:
        """How many versions/objects are current for the credential (must be exactly 1)."""
        if self.name == "aws-sm":
            client = self.server.boto3_client()
            versions = client.list_secret_version_ids(SecretId=f"faults/{case}")["Versions"]
            return sum("AWSCURRENT" in v.get("VersionStages", []) for v in versions)
        if self.name == "k8s":
            objects = self.server.objects()
            return sum(1 for key in objects if key == ("v1/secrets", "faults", case))
        meta = self.server.hvac_client().secrets.kv.v2.read_secret_metadata(
            path=f"faults/{case}", mount_point="secret"
        )["data"]
        versions = meta["versions"]
        current = str(meta["current_version"])
        return sum(1 for v, info in versions.items() if v == current and not info["destroyed"])


@contextlib.contextmanager
def _backend(name: str) -> Iterator[Backend]:
    if name == "vault":
        import hvac

        from vault_plugin_helper.vault import VaultStore

        with OpenBaoServer() as bao, TcpProxy(bao.port) as proxy:
            yield Backend(
                name,
                proxy,
                VaultStore(client=hvac.Client(url=proxy.url, token=bao.token, timeout=10)),
                VaultStore(client=bao.hvac_client()),
                bao,
            )
    elif name == "aws-sm":
        import boto3

        from vault_plugin_helper.aws import SecretsManagerStore

        with MotoServer() as moto, TcpProxy(moto.port) as proxy:
            session = boto3.session.Session(
                aws_access_key_id="testing", aws_secret_access_key="testing"
            )
            yield Backend(
                name,
                proxy,
                SecretsManagerStore(
                    session=session,
                    region_name=moto.region,
                    endpoint_url=proxy.url,
                    connect_timeout=5,
                    read_timeout=10,
                    max_attempts=1,
                ),
                SecretsManagerStore(client=moto.boto3_client()),
                moto,
            )
    else:
        from kubernetes import client as k8s_client

        from k8s_operator_hooks.store import KubernetesSecretStore

        with KubeEmulator() as kube, TcpProxy(kube.port) as proxy:
            configuration = k8s_client.Configuration(host=proxy.url)
            configuration.proxy = None
            configuration.retries = 0
            yield Backend(
                name,
                proxy,
                KubernetesSecretStore(api_client=k8s_client.ApiClient(configuration), timeout=10),
                KubernetesSecretStore(api_client=kube.api_client(), timeout=10),
                kube,
            )


@pytest.fixture(scope="module")
def authority(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Authority]:
    with running_authority(tmp_path_factory.mktemp("faults-authority")) as auth:
        yield auth


@pytest.fixture(scope="module")
def client(authority: Authority) -> Iterator[AuthorityClient]:
    key = authority.embedded.service.create_api_key(f"faults-{secrets.token_hex(4)}").key
    with AuthorityClient(authority.url, key) as c:
        yield c


@pytest.fixture(scope="module", params=STORES)
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    with _backend(request.param) as b:
        yield b


def _my_cert_ids(client: AuthorityClient) -> set[str]:
    ids: set[str] = set()
    page = 1
    while True:
        audit = client.audit(page=page, page_size=500)
        ids.update(item.cert_id for item in audit.items)
        if not audit.has_next:
            return ids
        page += 1


def _status(client: AuthorityClient, cert_id: str) -> tuple[str, str | None]:
    record = client.get_certificate(cert_id)
    return record.status, record.revocation_reason


SURVIVED: list[str] = []


@pytest.mark.parametrize(("step", "kind"), CASES, ids=[f"{s}-{k}" for s, k in CASES])
def test_rotation_survives_store_fault(
    backend: Backend, client: AuthorityClient, tmp_path: Path, step: str, kind: str
) -> None:
    case = f"c-{uuid.uuid4().hex[:10]}"
    uri = backend.uri(case)
    parsed = parse_store_uri(uri)

    # The credential in place before the rotation (epoch e1).
    ensure_rotated(client, backend.direct, uri, "soc2", keeper="e1")
    before = backend.direct.read(parsed)
    assert before is not None and before.password and before.refs is not None
    issued_before = _my_cert_ids(client)

    # The rotation to epoch e2, with the fault.
    faulty = FaultyStore(backend.proxied, step, kind, backend.proxy)
    error: PassgeniError | None = None
    try:
        ensure_rotated(client, faulty, uri, "soc2", keeper="e2")
    except PassgeniError as exc:
        error = exc
    assert faulty.fired, "the fault was never reached"

    # -- while the fault holds, on the real server:
    now = backend.direct.read(parsed)
    assert now is not None and now.password is not None and now.credential is not None
    assert now.refs is not None, "a stored credential without certificate references"
    new_certs = _my_cert_ids(client) - issued_before
    fully_written = now.refs.cert_id != before.refs.cert_id
    if step in ("before-certification", "after-certification", "after-proof-write"):
        # After the proof record's write the value is still the previous one, and its
        # proof entry was kept beside the new (orphan) one: nothing lost.
        assert isinstance(error, StoreError), error
        assert not fully_written
        assert now.password == before.password and now.version == before.version
        assert now.proof_layout == "sibling" and now.seed == before.seed
        if step != "before-certification":
            assert "previous credential is unchanged" in error.message
    else:
        # The new credential is stored with its references in the same version.
        assert fully_written
        assert now.refs.cert_id in new_certs
        if (step == "after-secret-write") == (kind == "ack-lost"):
            # A lost answer to the secret write: the store is re-read, the write
            # landed, the job goes on. A store gone after the metadata: nothing
            # more to write there. Both finish in one run.
            assert error is None, error
        else:
            # The metadata could not be written (or its answer was lost).
            assert isinstance(error, StoreError), error
            assert "re-run the same command to complete it" in error.message
    for cert_id in new_certs - {now.refs.cert_id}:
        assert _status(client, cert_id) == ("revoked", "not stored"), cert_id
    if step == "before-certification":
        assert new_certs == set(), "a certificate was issued although the store was down"

    # -- the fault ends; the same rotation is re-run.
    faulty.heal()
    again = ensure_rotated(client, faulty, uri, "soc2", keeper="e2")
    if fully_written:
        # Nothing rotated twice: the stored credential is kept (its metadata completed).
        assert again.status in ("unchanged", "repaired"), again.status
        assert again.cert_id == now.refs.cert_id
    else:
        assert again.status == "rotated", again.status

    final = backend.direct.read(parsed)
    assert final is not None and final.refs is not None and final.credential is not None
    assert final.metadata_refs is not None
    assert final.metadata_refs.cert_id == final.refs.cert_id
    assert backend.current_count(case) == 1
    record = client.get_certificate(final.refs.cert_id)
    assert record.status == "valid"
    assert record.label == keeper_label("e2")
    cert = verify_certificate(record.token, client.jwks(), issuer=client.issuer)
    assert verify_credential(cert, final.credential) == "generation"
    entry = assess(client, backend.name, final)
    assert entry.status == "valid", (entry.status, entry.detail)
    # The previous credential's certificate is revoked now that its successor is stored.
    assert _status(client, before.refs.cert_id) == ("revoked", "rotated")
    # Every other certificate issued in this case is revoked.
    for cert_id in _my_cert_ids(client) - issued_before - {final.refs.cert_id}:
        status, reason = _status(client, cert_id)
        assert status == "revoked", (cert_id, reason)
    SURVIVED.append(f"{backend.name}:{step}:{kind}")
