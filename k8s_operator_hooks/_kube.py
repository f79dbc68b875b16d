"""Connecting to a Kubernetes API server the way ``kubectl`` users expect.

Precedence (as ``kubectl`` and ``kubernetes.config.load_config``):

1. an explicit ``api_client`` (a ``kubernetes.client.ApiClient``) or ``host``
   (an unauthenticated base URL, for tests and ``kubectl proxy``);
2. ``in_cluster=True``: the pod's service account (token, CA, and
   ``KUBERNETES_SERVICE_HOST``/``KUBERNETES_SERVICE_PORT``);
3. a kubeconfig: the ``kubeconfig`` option, else ``$KUBECONFIG`` (a
   ``:``-separated list, merged as kubectl does), else ``~/.kube/config`` when
   it exists; ``context`` picks a context (default: the current one);
4. otherwise, inside a pod (``KUBERNETES_SERVICE_HOST`` set), in-cluster config.

The ``kubernetes`` package is imported only here, lazily, when a connection is
made: importing the store module costs nothing. A fresh
``kubernetes.client.Configuration`` is built per connection; the client's
process-wide default configuration is never modified.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from passgeni_core import StoreError

__all__ = ["connection_info", "describe_host", "load_configuration"]


def _home(env: Mapping[str, str]) -> Path:
    home = env.get("HOME")
    return Path(home) if home else Path("~").expanduser()


def load_configuration(
    *,
    host: str | None = None,
    kubeconfig: str | os.PathLike[str] | None = None,
    context: str | None = None,
    in_cluster: bool | None = None,
    environ: Mapping[str, str] | None = None,
) -> Any:
    """A ``kubernetes.client.Configuration`` chosen by the precedence above.

    Raises:
        StoreError: no configuration found, or it cannot be loaded (the
            message names the file or the missing variables, never a token).
    """
    try:
        from kubernetes import client
        from kubernetes.config import ConfigException, incluster_config, kube_config
    except ImportError:
        raise StoreError(
            "the k8s:// store needs the kubernetes client: pip install 'passgeni[k8s]'"
        ) from None

    env = os.environ if environ is None else environ
    configuration = client.Configuration()
    if host:
        configuration.host = host.rstrip("/")
        return configuration

    # kubernetes 37 ships py.typed, but its config loaders have no annotations:
    # mypy --strict needs the three no-untyped-call ignores below.
    def in_cluster_config() -> Any:
        loader = incluster_config.InClusterConfigLoader(  # type: ignore[no-untyped-call]
            token_filename=incluster_config.SERVICE_TOKEN_FILENAME,
            cert_filename=incluster_config.SERVICE_CERT_FILENAME,
            environ=env,
        )
        try:
            loader.load_and_set(configuration)  # type: ignore[no-untyped-call]
        except ConfigException as exc:
            raise StoreError(
                f"in-cluster Kubernetes configuration failed: {' '.join(str(exc).split())[:200]}"
            ) from None
        return configuration

    if in_cluster:
        return in_cluster_config()
    path: str | None = None
    if kubeconfig is not None:
        path = os.fspath(kubeconfig)
    elif env.get("KUBECONFIG"):
        path = env["KUBECONFIG"]
    else:
        default = _home(env) / ".kube" / "config"
        if default.is_file():
            path = str(default)
    if path is not None:
        try:
            kube_config.load_kube_config(  # type: ignore[no-untyped-call]
                config_file=path,
                context=context,
                client_configuration=configuration,
                persist_config=False,
            )
        except ConfigException as exc:
            raise StoreError(
                f"cannot load the kubeconfig {path}: {' '.join(str(exc).split())[:200]}"
            ) from None
        except OSError as exc:
            raise StoreError(
                f"cannot read the kubeconfig {path}: {exc.strerror or type(exc).__name__}"
            ) from None
        return configuration
    if env.get("KUBERNETES_SERVICE_HOST"):
        return in_cluster_config()
    raise StoreError(
        "no Kubernetes configuration: set KUBECONFIG or create ~/.kube/config (kubectl's "
        "configuration), run inside a cluster with a service account, or pass api_client="
    )


def describe_host(api_client: Any) -> str:
    """The API server's base URL of a ``kubernetes.client.ApiClient`` (no credentials)."""
    configuration = getattr(api_client, "configuration", None)
    host = getattr(configuration, "host", None)
    return str(host) if host else "the Kubernetes API server"


def connection_info(configuration: Any) -> dict[str, Any]:
    """The parts of a ``Configuration`` kopf's ``ConnectionInfo`` needs, as keyword arguments.

    Mirrors ``kopf.login_via_client`` but for this configuration, so the
    operator's watch streams and its store writes reach the same cluster with
    the same credentials.
    """
    header = configuration.get_api_key_with_prefix(
        "BearerToken"
    ) or configuration.get_api_key_with_prefix("authorization")
    parts = header.split(" ", 1) if header else []
    scheme, token = (
        (None, None) if not parts else (None, parts[0]) if len(parts) == 1 else (parts[0], parts[1])
    )
    return {
        "server": configuration.host,
        "ca_path": configuration.ssl_ca_cert,
        "insecure": not configuration.verify_ssl,
        "username": configuration.username or None,
        "password": configuration.password or None,
        "scheme": scheme,
        "token": token,
        "certificate_path": configuration.cert_file,
        "private_key_path": configuration.key_file,
    }
