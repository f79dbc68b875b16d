"""The operator started as its manifests start it, against the emulator; its RBAC is exact.

For each kustomization (``k8s_operator_hooks/deploy``: the base, the
cluster-wide and the chosen-namespaces overlays), rendered by the real
kustomize: the Deployment's container ``command`` + ``args`` run as a process
with the ``env`` it gives (``fieldRef`` and ``secretKeyRef`` resolved as the
kubelet would), and only the values that name the site replaced: the
authority's URL and API key (the test authority), the cluster (``$KUBECONFIG``
to the emulator instead of the in-cluster service account), the liveness
endpoint's host and port (127.0.0.1 and a free port), and the check interval
(1 s instead of an hour, so the expiry check runs too). The readiness probe is
asked as the kubelet asks it.

Every request the operator makes is recorded by the emulator and turned into
what RBAC sees (verb, API group, resource, namespace). Each must be granted by
a rule the manifests bind to the operator's ServiceAccount (a Role in that
namespace, or a ClusterRole), and each rule's verb must have been used: the
RBAC covers exactly what the operator does.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

from tests.integration.k8s_operator_hooks.conftest import (
    KUBECONFIG_TEMPLATE,
    Authority,
    make_secret,
    read_secret,
)
from tests.integration.k8s_operator_hooks.test_operator import wait_for
from tests.support import KubeEmulator
from tests.support.kube import RecordedRequest
from tests.support.kube_manifests import BASE, DEPLOY, by_kind, operator_container, render
from tests.support.process import LOCALHOST, free_port
from tests.support.proofs import k8s_cert_id, k8s_proof

#: Non-resource URLs: discovery, which every authenticated user may read (system:discovery).
DISCOVERY = ("/api", "/apis", "/version")
#: The operator's bearer token in its kubeconfig: its requests are the ones sent with it.
OPERATOR_TOKEN = "operator-" + secrets.token_hex(8)


def env_for(
    container: dict[str, Any], deployment: dict[str, Any], secrets: dict[tuple[str, str], str]
) -> dict[str, str]:
    """The container's environment as the kubelet gives it."""
    env: dict[str, str] = {}
    meta = deployment["metadata"]
    for entry in container.get("env") or []:
        if "value" in entry:
            env[entry["name"]] = str(entry["value"])
            continue
        source = entry["valueFrom"]
        if "fieldRef" in source:
            field = source["fieldRef"]["fieldPath"]
            assert field == "metadata.namespace", field
            env[entry["name"]] = meta["namespace"]
        else:
            ref = source["secretKeyRef"]
            env[entry["name"]] = secrets[(ref["name"], ref["key"])]
    return env


def local_liveness(args: list[str]) -> tuple[list[str], str]:
    """``args`` with the liveness endpoint on 127.0.0.1 and a free port; and its URL."""
    out, url = [], ""
    for arg in args:
        if arg.startswith("--liveness="):
            parts = urlsplit(arg.split("=", 1)[1])
            url = urlunsplit(parts._replace(netloc=f"{LOCALHOST}:{free_port()}"))
            arg = f"--liveness={url}"
        out.append(arg)
    assert url, "no --liveness in the manifest's args"
    return out, url


def probe(url: str) -> dict[str, Any] | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as answer:
            return dict(json.loads(answer.read() or b"{}")) if answer.status == 200 else None
    except OSError:
        return None


@contextlib.contextmanager
def deployed_operator(
    objects: list[dict[str, Any]],
    authority: Authority,
    kube: KubeEmulator,
    home: Path,
    never_logged: list[str],
) -> Iterator[str]:
    """The operator process as the Deployment runs it; yields the readiness probe's URL."""
    (deployment,) = by_kind(objects, "Deployment")
    container = operator_container(objects)
    secrets = {("passgeni-authority", "api-key"): authority.api_key}
    env = env_for(container, deployment, secrets)
    # The site: the authority, the cluster, the probe's socket, a short check interval.
    assert env["PASSGENI_URL"].startswith("https://") and "PASSGENI_API_KEY" in env
    env["PASSGENI_URL"] = authority.url
    env["PASSGENI_ISSUER"] = authority.issuer
    env["PASSGENI_OPERATOR_CHECK_INTERVAL"] = "1"
    kubeconfig = home / "kubeconfig"
    kubeconfig.write_text(
        KUBECONFIG_TEMPLATE.format(url=kube.url).replace("not-a-real-token", OPERATOR_TOKEN)
    )
    (home / "absent.toml").write_text("")
    env.update(
        KUBECONFIG=str(kubeconfig),
        PASSGENI_CONFIG=str(home / "absent.toml"),
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        HOME=str(home),
    )
    args, liveness = local_liveness(list(container.get("args") or []))
    readiness = container["readinessProbe"]["httpGet"]
    assert readiness["path"] == urlsplit(liveness).path
    command = list(container["command"])
    log = (home / "operator.log").open("w")
    process = subprocess.Popen(
        [*command, *args], env=env, stdout=log, stderr=subprocess.STDOUT, cwd=home
    )
    try:
        wait_for("the readiness probe", lambda: probe(liveness), timeout=30)
        yield liveness
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            code = process.wait(30)
        finally:
            if process.poll() is None:
                process.kill()
            log.close()
        output = (home / "operator.log").read_text()
    assert code == 0, output
    for secret in [authority.api_key, *never_logged]:
        assert secret not in output


def granted(objects: list[dict[str, Any]]) -> list[tuple[str | None, dict[str, Any]]]:
    """(namespace or None for cluster-wide, rule) for each rule bound to the operator."""
    (account,) = by_kind(objects, "ServiceAccount")
    me = (account["metadata"]["name"], account["metadata"]["namespace"])
    roles = {
        (o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]): o
        for o in objects
        if o["kind"] in ("Role", "ClusterRole")
    }
    out = []
    for binding in by_kind(objects, "RoleBinding") + by_kind(objects, "ClusterRoleBinding"):
        if not any(
            s["kind"] == "ServiceAccount" and (s["name"], s["namespace"]) == me
            for s in binding["subjects"]
        ):
            continue
        ref = binding["roleRef"]
        scope = binding["metadata"].get("namespace") if binding["kind"] == "RoleBinding" else None
        role_ns = scope if ref["kind"] == "Role" else None
        role = roles[(ref["kind"], role_ns, ref["name"])]
        out.extend((scope, rule) for rule in role["rules"])
    return out


def allows(rule: dict[str, Any], request: RecordedRequest) -> bool:
    return (
        request.group in rule["apiGroups"]
        and request.resource in rule["resources"]
        and request.verb in rule["verbs"]
    )


def namespaces_watched(objects: list[dict[str, Any]]) -> list[str]:
    (deployment,) = by_kind(objects, "Deployment")
    env = env_for(operator_container(objects), deployment, {("passgeni-authority", "api-key"): ""})
    value = env["PASSGENI_OPERATOR_NAMESPACES"]
    return [] if value == "*" else [n.strip() for n in value.split(",") if n.strip()]


@pytest.mark.parametrize(
    "where", ["base", "overlays/cluster-wide", "overlays/namespaces"], ids=lambda w: w
)
def test_the_operator_as_deployed_and_its_rbac(
    where: str, authority: Authority, tmp_path: Path
) -> None:
    from kubernetes import client

    objects = render(BASE if where == "base" else DEPLOY / where)
    watched = namespaces_watched(objects)
    # The namespace a managed Secret lives in: the first watched one, or any.
    namespace = watched[0] if watched else "team-a"
    unwatched = "elsewhere"
    with KubeEmulator(record_requests=True) as kube, contextlib.closing(kube.api_client()) as api:
        core = client.CoreV1Api(api)
        passwords: list[str] = []  # filled while the operator runs, checked against its log
        with deployed_operator(objects, authority, kube, tmp_path, passwords) as readiness:
            make_secret(core, unwatched, "app", annotations={"passgeni.ai/preset": "soc2"})
            make_secret(core, namespace, "app", annotations={"passgeni.ai/preset": "soc2"})

            def cert() -> str | None:
                return k8s_cert_id(core, namespace, "app")

            first = wait_for("provisioned", cert, timeout=30)
            # The expiry check's path: a revoked certificate is rotated.
            authority.client().revoke(first, "compromised")
            wait_for("rotated", lambda: (c := cert()) and c != first and c, timeout=30)
            # The probe reports the managed Secrets (kopf caches its answer for 10 s):
            # cluster-wide, the one in the other namespace too.
            count = 1 if watched else 2
            wait_for(
                "the probe's count",
                lambda: (probe(readiness) or {}).get("managed_secrets") == count,
                timeout=30,
            )
            unmanaged = read_secret(core, unwatched, "app")["data"]
            # No finalizer: deleting the Secret (or its namespace) never waits for the operator.
            raw = json.loads(
                core.read_namespaced_secret("app", namespace, _preload_content=False).data
            )
            assert not raw["metadata"].get("finalizers"), raw["metadata"]
            data = read_secret(core, namespace, "app")["data"]
            assert sorted(data) == ["password"]  # the seed is in the proof record
            passwords += [data["password"], k8s_proof(core, namespace, "app")["seed"]]
            assert len(passwords) == 2, sorted(data)  # the password and its seed
            passwords += [base64.b64encode(p.encode()).decode() for p in passwords]
        recorded = [r for r in kube.requests if r.authorization == f"Bearer {OPERATOR_TOKEN}"]

    if watched:  # an unwatched namespace is not served
        assert unmanaged == {}
    operator_calls = [r for r in recorded if r.verb is not None and r.resource is not None]
    rules = granted(objects)
    assert rules, "no rule is bound to the operator's ServiceAccount"
    assert operator_calls, "no request of the operator was recorded"
    for request in operator_calls:
        ok = any(
            allows(rule, request) and (scope is None or scope == request.namespace)
            for scope, rule in rules
        )
        assert ok, f"not granted by the manifests: {request}"
    for request in recorded:
        if request.verb is None:
            assert request.path.startswith(DISCOVERY), f"a non-resource URL: {request.path}"
    # Exactly: every verb of every rule was used.
    used = {(r.group, r.resource, r.verb) for r in operator_calls}
    for _, rule in rules:
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                for verb in rule["verbs"]:
                    assert (group, resource, verb) in used, f"granted but unused: {verb} {resource}"
