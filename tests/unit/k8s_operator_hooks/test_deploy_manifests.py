"""The operator's deployment manifests, offline: valid against the Kubernetes 1.37 schemas
(PyPI ``kubernetes-validate``, strict), as written and as kustomize renders them, and saying
what the operator needs: least privilege, probes on the liveness endpoint, limits, a locked-down
container. (The run against the emulator is tests/integration/k8s_operator_hooks/test_deploy_run.py.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import kubernetes_validate
import pytest

from k8s_operator_hooks.operator import OperatorConfig
from tests.support.kube_manifests import (
    BASE,
    KUSTOMIZATIONS,
    OVERLAYS,
    by_kind,
    operator_container,
    plain_documents,
    render,
)

KUBERNETES = "1.37.0"
#: What the operator calls (the integration test records it against the emulator).
OPERATOR_RULES = [
    {
        "apiGroups": [""],
        "resources": ["secrets"],
        "verbs": ["get", "list", "watch", "patch", "create"],
    },
    {"apiGroups": [""], "resources": ["events"], "verbs": ["create"]},
]
OVERLAY = {p.name: p for p in OVERLAYS}


def rel(path: Path) -> str:
    return str(path.relative_to(BASE.parent))


@pytest.mark.parametrize("path_doc", list(plain_documents()), ids=lambda pd: rel(pd[0]))
def test_every_manifest_as_written_is_valid(path_doc: tuple[Path, dict[str, Any]]) -> None:
    _, doc = path_doc
    kubernetes_validate.validate(doc, KUBERNETES, strict=True)


@pytest.mark.parametrize("path", KUSTOMIZATIONS, ids=rel)
def test_every_kustomization_renders_valid_objects(path: Path) -> None:
    objects = render(path)
    assert by_kind(objects, "Deployment") and by_kind(objects, "ServiceAccount")
    for obj in objects:
        kubernetes_validate.validate(obj, KUBERNETES, strict=True)


def test_validation_is_real() -> None:
    """A typo'd field and a wrong type are refused (the check above can fail)."""
    (deployment,) = by_kind(render(BASE), "Deployment")
    typo = {**deployment, "spec": {**deployment["spec"], "replica": 1}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(typo, KUBERNETES, strict=True)
    wrong = {**deployment, "spec": {**deployment["spec"], "replicas": "one"}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(wrong, KUBERNETES, strict=True)


def env_of(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in container.get("env") or []}


def bindings_to_operator(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    (account,) = by_kind(objects, "ServiceAccount")
    found = []
    for binding in by_kind(objects, kind):
        for subject in binding["subjects"]:
            if (
                subject["kind"] == "ServiceAccount"
                and subject["name"] == account["metadata"]["name"]
            ):
                assert subject["namespace"] == account["metadata"]["namespace"]
                found.append(binding)
    return found


def test_the_base_is_least_privilege_in_its_own_namespace() -> None:
    objects = render(BASE)
    assert not by_kind(objects, "ClusterRole") and not by_kind(objects, "ClusterRoleBinding")
    (role,) = by_kind(objects, "Role")
    (binding,) = bindings_to_operator(objects, "RoleBinding")
    assert role["rules"] == OPERATOR_RULES
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": role["metadata"]["name"],
    }
    (deployment,) = by_kind(objects, "Deployment")
    namespace = deployment["metadata"]["namespace"]
    assert role["metadata"]["namespace"] == binding["metadata"]["namespace"] == namespace
    # It watches the namespace it runs in, which is where its Role is.
    watched = env_of(operator_container(objects))["PASSGENI_OPERATOR_NAMESPACES"]
    assert watched["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}


def test_the_cluster_wide_overlay() -> None:
    objects = render(OVERLAY["cluster-wide"])
    assert not by_kind(objects, "Role") and not by_kind(objects, "RoleBinding")
    (role,) = by_kind(objects, "ClusterRole")
    (binding,) = bindings_to_operator(objects, "ClusterRoleBinding")
    assert role["rules"] == OPERATOR_RULES
    assert binding["roleRef"]["kind"] == "ClusterRole"
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    watched = env_of(operator_container(objects))["PASSGENI_OPERATOR_NAMESPACES"]
    assert watched == {"name": "PASSGENI_OPERATOR_NAMESPACES", "value": "*"}


def test_the_namespaces_overlay_grants_exactly_the_watched_namespaces() -> None:
    objects = render(OVERLAY["namespaces"])
    assert not by_kind(objects, "ClusterRole") and not by_kind(objects, "ClusterRoleBinding")
    watched = env_of(operator_container(objects))["PASSGENI_OPERATOR_NAMESPACES"]["value"]
    names = {n.strip() for n in watched.split(",")}
    roles = by_kind(objects, "Role")
    assert {r["metadata"]["namespace"] for r in roles} == names
    assert all(r["rules"] == OPERATOR_RULES for r in roles)
    bound = {b["metadata"]["namespace"] for b in bindings_to_operator(objects, "RoleBinding")}
    assert bound == names


@pytest.mark.parametrize("path", KUSTOMIZATIONS, ids=rel)
def test_the_deployment(path: Path) -> None:
    objects = render(path)
    (deployment,) = by_kind(objects, "Deployment")
    spec = deployment["spec"]
    pod = spec["template"]["spec"]
    container = operator_container(objects)
    # Never two operators at once: one replica, replaced not rolled, no peering.
    assert spec["replicas"] == 1 and spec["strategy"] == {"type": "Recreate"}
    assert container["command"] == ["passgeni", "operator"] and "--standalone" in container["args"]
    (account,) = by_kind(objects, "ServiceAccount")
    assert pod["serviceAccountName"] == account["metadata"]["name"]
    # The probes ask the liveness endpoint kopf serves (--liveness), on its port and path.
    (liveness,) = [a.split("=", 1)[1] for a in container["args"] if a.startswith("--liveness=")]
    url = urlsplit(liveness)
    (port,) = container["ports"]
    assert port["containerPort"] == url.port
    for probe in (container["livenessProbe"], container["readinessProbe"]):
        assert probe["httpGet"]["path"] == url.path
        assert probe["httpGet"]["port"] in (port["name"], url.port)
    # Requests and limits for both.
    for kind in ("requests", "limits"):
        assert set(container["resources"][kind]) == {"cpu", "memory"}
    # Non-root, read-only root file system, no privilege escalation, no capabilities.
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False and security["privileged"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    # The API key comes from a Secret, never a literal or a flag.
    env = env_of(container)
    assert (
        "value" not in env["PASSGENI_API_KEY"]
        and "secretKeyRef" in env["PASSGENI_API_KEY"]["valueFrom"]
    )
    assert not any("api-key" in a or "API_KEY" in a for a in container["args"])


@pytest.mark.parametrize("path", KUSTOMIZATIONS, ids=rel)
def test_the_settings_are_ones_the_operator_accepts(path: Path) -> None:
    env = {
        name: str(e["value"])
        for name, e in env_of(operator_container(render(path))).items()
        if "value" in e
    }
    config = OperatorConfig.from_environ(env)
    assert config.rotate_window.days == int(env["PASSGENI_OPERATOR_ROTATE_WINDOW_DAYS"])
    assert config.check_interval == float(env["PASSGENI_OPERATOR_CHECK_INTERVAL"])
