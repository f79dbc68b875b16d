"""``passgeni scan k8s://NAMESPACE`` and ``passgeni operator`` through the real CLI."""

from __future__ import annotations

import base64
import csv
import io
import json
import threading
from typing import Any

import pytest

from k8s_operator_hooks.store import KubernetesSecretStore
from passgeni_core import provision_into_store
from passgeni_core.cli import main
from tests.integration.k8s_operator_hooks.conftest import Authority, make_secret, read_secret
from tests.support.proofs import k8s_cert_id

pytestmark = pytest.mark.usefixtures("kubeconfig", "passgeni_env")


def test_scan_reports_each_status(
    core: Any, authority: Authority, namespace: str, capsys: pytest.CaptureFixture[str]
) -> None:
    client = authority.client()
    store = KubernetesSecretStore()
    ns = namespace
    provision_into_store(client, store, f"k8s://{ns}/good", "soc2")
    with authority.clock.shifted(days=-350):
        provision_into_store(client, store, f"k8s://{ns}/soon", "soc2")
    provision_into_store(client, store, f"k8s://{ns}/drift#db_password", "soc2")
    core.patch_namespaced_secret(  # someone replaces the value behind the certificate
        "drift", ns, {"data": {"db_password": base64.b64encode(b"changed-by-hand").decode()}}
    )
    make_secret(core, ns, "bare", data={"password": "no-cert-here", "username": "u"})
    revoked = provision_into_store(client, store, f"k8s://{ns}/gone", "soc2")
    client.revoke(revoked.cert_id, "compromised")
    # The seed document's spelling names the certificate only in an annotation.
    make_secret(
        core,
        ns,
        "legacy",
        data={"password": "legacy-value"},
        annotations={"passgenni-cert-url": revoked.cert_url},
    )
    make_secret(core, ns, "tls", data={"tls.crt": "c", "tls.key": "k"})  # not a credential
    store.close()

    code = main(["scan", f"k8s://{ns}", "--json"])
    out = capsys.readouterr().out
    assert code == 1  # something falls short
    report = json.loads(out)
    status = {c["uri"]: c["status"] for c in report["credentials"]}
    assert status == {
        f"k8s://{ns}/bare#password": "no_certificate",
        f"k8s://{ns}/drift#db_password": "drifted",
        f"k8s://{ns}/gone#password": "revoked",
        f"k8s://{ns}/good#password": "valid",
        f"k8s://{ns}/legacy#password": "drifted",
        f"k8s://{ns}/soon#password": "expiring",
    }
    by_uri = {c["uri"]: c for c in report["credentials"]}
    assert by_uri[f"k8s://{ns}/legacy#password"]["cert_id"] == revoked.cert_id
    assert "changed or chosen by hand" in by_uri[f"k8s://{ns}/drift#db_password"]["detail"]
    assert "compromised" in by_uri[f"k8s://{ns}/gone#password"]["detail"]
    for secret in ("no-cert-here", "legacy-value", "changed-by-hand"):
        assert secret not in out

    # The CSV registry for a CMDB, and the human table.
    assert main(["scan", f"k8s://{ns}", "--format", "csv"]) == 1
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert {r["status"] for r in rows} == {
        "valid",
        "expiring",
        "drifted",
        "no_certificate",
        "revoked",
    }
    assert main(["scan", f"k8s://{ns}/good#password"]) == 0
    assert "valid" in capsys.readouterr().out


def test_provision_store_cli(core: Any, namespace: str, capsys: pytest.CaptureFixture[str]) -> None:
    uri = f"k8s://{namespace}/cli-made#token"
    assert main(["provision", "--preset", "pci-dss", "--store", uri, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert "password" not in result and result["outcome"] == "created"
    secret = read_secret(core, namespace, "cli-made")
    assert set(secret["data"]) == {"token"}
    assert k8s_cert_id(core, namespace, "cli-made", "token") == result["cert_id"]
    assert secret["annotations"]["passgeni.ai/standard"] == "PCI-DSS"
    assert secret["data"]["token"] not in json.dumps(result)


def test_operator_command(core: Any, namespace: str, capsys: pytest.CaptureFixture[str]) -> None:
    """``passgeni operator`` is a plugin command; it runs the same handlers."""
    with pytest.raises(SystemExit) as info:
        main(["operator", "--help"])
    assert info.value.code == 0
    help_text = capsys.readouterr().out
    assert "--rotate-window-days" in help_text and "--namespace" in help_text

    from k8s_operator_hooks.cli import run_operator

    stop, ready = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def run() -> None:
        try:
            run_operator(standalone=True, check_interval=60, stop_flag=stop, ready_flag=ready)
        except BaseException as exc:  # reported below
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        assert ready.wait(20), errors
        make_secret(core, namespace, "by-command", annotations={"passgeni.ai/preset": "hipaa"})
        import time

        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if k8s_cert_id(core, namespace, "by-command") is not None:
                break
            time.sleep(0.1)
        else:
            raise AssertionError("the operator did not provision the Secret")
    finally:
        stop.set()
        thread.join(30)
    assert not thread.is_alive() and not errors
