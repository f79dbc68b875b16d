"""The kopf operator against the kmock emulator and the real authority.

kopf runs in-process with its own test runner (``KopfRunner``: ``kopf run -A
--standalone``), connecting through the operator's login handler, i.e. the
same ``$KUBECONFIG`` the store uses. ``-A`` because the emulator cannot list
namespaces. Each test watches for an observable end state with a deadline.
"""

from __future__ import annotations

import base64
import json
import logging
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any, TypeVar

import kopf
import pytest
from kopf.testing import KopfRunner

from k8s_operator_hooks.operator import STATE_PREFIX, OperatorConfig, register_handlers
from passgeni_core import parse_store_uri, provision_into_store
from tests.integration.k8s_operator_hooks.conftest import Authority, make_secret, read_secret
from tests.support.proofs import k8s_cert_id

# kopf's CLI makes the registry it is given the default one; keep the module's own.
MODULE_REGISTRY = kopf.get_default_registry()

pytestmark = pytest.mark.usefixtures("kubeconfig", "passgeni_env")

T = TypeVar("T")


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = 15.0) -> T:
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = probe()
        except Exception:
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def events(core: Any, namespace: str, name: str) -> list[dict[str, Any]]:
    raw = json.loads(core.list_namespaced_event(namespace, _preload_content=False).data)
    return [
        e for e in raw.get("items") or [] if (e.get("involvedObject") or {}).get("name") == name
    ]


def cert_ids(authority: Authority) -> set[str]:
    return {r.cert_id for r in authority.client().iter_audit(page_size=500)}


def raw_annotations(core: Any, namespace: str, name: str) -> dict[str, str]:
    raw = json.loads(core.read_namespaced_secret(name, namespace, _preload_content=False).data)
    return dict((raw.get("metadata") or {}).get("annotations") or {})


@pytest.fixture
def operator(kubeconfig: Any, passgeni_env: None) -> Iterator[KopfRunner]:
    """The operator with a 0.5 s expiry check and a 30-day rotation window."""
    registry = register_handlers(
        kopf.OperatorRegistry(),
        OperatorConfig(rotate_window=timedelta(days=30), check_interval=0.5),
    )
    # --verbose: kopf's own logging set-up (in the runner's thread) sets the root level;
    # without it, it may reset a test's caplog.set_level(DEBUG) to INFO, depending on timing.
    args = ["run", "-A", "--standalone", "--verbose"]
    with KopfRunner(args, registry=registry, timeout=30) as runner:
        yield runner
    assert runner.exception is None, runner.output


def test_provisions_leaves_alone_and_rotates(
    operator: KopfRunner,
    core: Any,
    authority: Authority,
    namespace: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)  # kopf logs whole bodies at debug level: redacted
    make_secret(
        core,
        namespace,
        "app",
        data={"username": "app"},
        annotations={
            "passgeni.ai/preset": "soc2",
            "passgeni.ai/keys": "db_password, api_key",
            "team.example/owner": "a",
        },
    )

    def provisioned() -> dict[str, Any] | None:
        certified = all(k8s_cert_id(core, namespace, "app", k) for k in ("db_password", "api_key"))
        secret = read_secret(core, namespace, "app")  # read after: holds what was certified
        ok = certified and "passgeni.ai/cert-id" in secret["annotations"]
        return secret if ok else None

    first = wait_for("both keys provisioned", provisioned)
    data = first["data"]
    assert data["username"] == "app" and first["annotations"]["team.example/owner"] == "a"
    assert not [k for k in data if ".passgeni-" in k]  # the proofs are beside the value
    old = {k: str(k8s_cert_id(core, namespace, "app", k)) for k in ("db_password", "api_key")}
    client = authority.client()
    for key, cert_id in old.items():
        record = client.get_certificate(cert_id)
        assert record.status == "valid" and record.compliance_standard == "SOC2"
        assert record.target is not None and record.target.path == f"{namespace}/app#{key}"

    # An unrelated update: a label, a foreign annotation and another data key.
    issued_before = cert_ids(authority)
    core.patch_namespaced_secret(
        "app",
        namespace,
        {
            "metadata": {"labels": {"tier": "db"}, "annotations": {"team.example/owner": "b"}},
            "data": {"extra": base64.b64encode(b"x").decode()},
        },
    )
    # kopf records what it handled: wait until it has seen the update.
    wait_for(
        "the update handled",
        lambda: (
            '"tier":"db"'
            in raw_annotations(core, namespace, "app").get(
                f"{STATE_PREFIX}/last-handled-configuration", ""
            )
        ),
    )
    time.sleep(1.0)  # and a few expiry checks (0.5 s) on top
    after = read_secret(core, namespace, "app")
    for key in ("db_password", "api_key"):
        assert after["data"][key] == data[key]
    assert cert_ids(authority) == issued_before, "an unrelated update issued a certificate"

    # Rotation on request: new values and certificates, old ones revoked, annotation removed.
    core.patch_namespaced_secret(
        "app", namespace, {"metadata": {"annotations": {"passgeni.ai/rotate": "true"}}}
    )

    def rotation_done() -> dict[str, Any] | None:
        rotated = all(k8s_cert_id(core, namespace, "app", k) not in (None, old[k]) for k in old)
        secret = read_secret(core, namespace, "app")  # read after: holds what was certified
        ok = "passgeni.ai/rotate" not in secret["annotations"] and rotated
        return secret if ok else None

    rotated = wait_for("rotation done", rotation_done)
    for key, cert_id in old.items():
        assert rotated["data"][key] != data[key]
        new_id = str(k8s_cert_id(core, namespace, "app", key))
        assert client.get_certificate(new_id).status == "valid"
        revoked = client.get_certificate(cert_id)
        assert revoked.status == "revoked" and revoked.revocation_reason == "rotated"
    assert rotated["data"]["username"] == "app" and rotated["data"]["extra"] == "x"
    assert rotated["annotations"]["team.example/owner"] == "b"

    # Events tell what happened, with certificate ids and never a secret.
    def rotated_events() -> list[Any] | None:
        found = [e.get("reason") for e in events(core, namespace, "app")]
        return found if found.count("Rotated") >= 2 else None

    reasons = wait_for("events", rotated_events)
    assert reasons.count("Provisioned") == 2
    everything = (
        json.dumps(events(core, namespace, "app"))
        + json.dumps(raw_annotations(core, namespace, "app"))
        + "\n".join(r.getMessage() for r in caplog.records)
    )
    assert any("is in progress" in r.getMessage() for r in caplog.records)
    for value in list(data.values()) + list(rotated["data"].values()):
        if value not in ("app", "x") and ".passgeni-" not in value and len(value) > 8:
            if value.startswith("http") or value.startswith("pg_"):
                continue
            assert value not in everything
            assert base64.b64encode(value.encode()).decode() not in everything


def test_invalid_preset_fails_permanently_with_an_event(
    operator: KopfRunner, core: Any, namespace: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="kopf.objects")
    make_secret(core, namespace, "bad", annotations={"passgeni.ai/preset": "no-such-preset"})
    warning = wait_for(
        "a warning event",
        lambda: [e for e in events(core, namespace, "bad") if e.get("reason") == "InvalidPreset"],
    )[0]
    assert warning["type"] == "Warning" and "no-such-preset" in warning["message"]
    # Permanent: kopf says so and schedules no retry. (The emulator keeps no
    # resourceVersion, so kopf may handle one stale event a second time; a real
    # API server lets kopf skip it.)
    time.sleep(1.0)
    messages = [r.getMessage() for r in caplog.records if r.name == "kopf.objects"]
    assert any("failed permanently" in m and "no-such-preset" in m for m in messages)
    assert not any("failed temporarily" in m or "will retry" in m.lower() for m in messages)
    assert read_secret(core, namespace, "bad")["data"] == {}
    # Fixing the annotation is a change: the Secret is then provisioned.
    core.patch_namespaced_secret(
        "bad", namespace, {"metadata": {"annotations": {"passgeni.ai/preset": "nist-800-63b"}}}
    )
    wait_for(
        "the fixed Secret provisioned",
        lambda: k8s_cert_id(core, namespace, "bad") is not None,
    )


def test_rotates_within_the_expiry_window(
    operator: KopfRunner, core: Any, authority: Authority, namespace: str
) -> None:
    from k8s_operator_hooks.store import KubernetesSecretStore

    uri = f"k8s://{namespace}/old#password"
    store = KubernetesSecretStore()
    with authority.clock.shifted(days=-350):  # issued 350 days ago: 15 days left
        old = provision_into_store(authority.client(), store, uri, "soc2")
    assert store.read(parse_store_uri(uri)) is not None
    core.patch_namespaced_secret(
        "old", namespace, {"metadata": {"annotations": {"passgeni.ai/preset": "soc2"}}}
    )

    def new_cert() -> str | None:
        secret = read_secret(core, namespace, "old")
        found = str(k8s_cert_id(core, namespace, "old") or "")
        done = found != old.cert_id and "passgeni.ai/rotate" not in secret["annotations"]
        return found if done else None

    new_id = wait_for("rotation before expiry", new_cert)
    assert authority.client().get_certificate(old.cert_id).status == "revoked"
    time.sleep(1.2)  # the fresh certificate is not rotated again
    assert k8s_cert_id(core, namespace, "old") == new_id
    store.close()


def test_kopf_run_module(core: Any, namespace: str, kubeconfig: Any, passgeni_env: None) -> None:
    """``kopf run -m k8s_operator_hooks.operator`` (handlers on the module's registry)."""
    with KopfRunner(
        ["run", "-A", "--standalone", "-m", "k8s_operator_hooks.operator"],
        registry=MODULE_REGISTRY,
        timeout=30,
    ) as runner:
        make_secret(core, namespace, "via-module", annotations={"passgeni.ai/preset": "soc2"})
        wait_for(
            "provisioned",
            lambda: k8s_cert_id(core, namespace, "via-module") is not None,
        )
    assert runner.exception is None, runner.output
