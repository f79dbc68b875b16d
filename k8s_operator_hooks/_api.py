"""The Secret calls of the Kubernetes API the store makes, with errors mapped to StoreError.

Bodies are sent and read as plain JSON (``_preload_content=False``), never as the
client's model objects, so what is written is exactly the store's intent. Error
messages carry the API server's reason with any secret of the call scrubbed out.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from passgeni_core import StoreConflict, StoreError, StoreLimitExceeded, StoreUnavailable

from ._secret import as_dict

__all__ = ["SecretsApi"]

_APPLY = "application/apply-patch+yaml"
_MERGE_PATCH = "application/merge-patch+json"
_PAGE_SIZE = 200


def _status_message(body: object) -> str:
    if isinstance(body, bytes):
        body = body.decode("utf-8", errors="replace")
    if not isinstance(body, str) or not body:
        return ""
    try:
        status = json.loads(body)
    except ValueError:
        return ""
    if not isinstance(status, dict):
        return ""
    return str(status.get("message") or status.get("reason") or "")


def _scrub(text: str, secrets: tuple[str, ...], limit: int = 200) -> str:
    out = " ".join(text.split())
    for secret in secrets:
        if secret:
            out = out.replace(secret, "***")
    return out[:limit]


def _json(response: Any, what: str) -> dict[str, Any]:
    try:
        obj = json.loads(response.data)
    except (ValueError, TypeError):
        raise StoreError(f"{what}: the Kubernetes API answered something not JSON") from None
    if not isinstance(obj, dict):
        raise StoreError(f"{what}: the Kubernetes API answered something not an object")
    return obj


class SecretsApi:
    """``CoreV1Api``'s Secret calls for one store: its timeout, field manager and host."""

    def __init__(self, core: Any, *, host: str, timeout: float, field_manager: str) -> None:
        self._core = core
        self.host = host
        self.timeout = timeout
        self.field_manager = field_manager

    def call(
        self,
        what: str,
        fn: Callable[..., Any],
        *args: Any,
        missing_ok: bool = False,
        secrets: tuple[str, ...] = (),
        **kwargs: Any,
    ) -> Any:
        """One API call with errors mapped to StoreError subclasses; None on 404 if missing_ok."""
        import urllib3
        from kubernetes.client.exceptions import ApiException
        from kubernetes.config import ConfigException

        try:
            return fn(*args, _request_timeout=self.timeout, **kwargs)
        except ApiException as exc:
            status = int(exc.status or 0)
            if status == 404 and missing_ok:
                return None
            detail = _scrub(_status_message(exc.body) or str(exc.reason or ""), secrets)
            where = f"the Kubernetes API at {self.host}"
            if status == 409:
                raise StoreConflict(f"{what}: {detail or 'conflict'} (HTTP 409)") from None
            if status in (401, 403):
                raise StoreError(
                    f"{what}: permission denied by {where} (HTTP {status}: {detail})"
                ) from None
            if status == 422 and ("too long" in detail.lower() or "at most" in detail.lower()):
                raise StoreLimitExceeded(f"{what}: refused by {where}: {detail}") from None
            if status == 429 or status >= 500 or status == 0:
                raise StoreUnavailable(
                    f"{what}: {where} answered HTTP {status} ({detail})"
                ) from None
            raise StoreError(f"{what}: {where} answered HTTP {status} ({detail})") from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise StoreUnavailable(
                f"{what}: cannot reach the Kubernetes API at {self.host} ({type(exc).__name__})"
            ) from None
        except ConfigException as exc:  # e.g. an expired exec/auth-provider credential
            raise StoreError(
                f"{what}: Kubernetes credentials: {_scrub(str(exc), secrets)}"
            ) from None

    def get(self, namespace: str, name: str) -> dict[str, Any] | None:
        """The Secret as JSON (a plain dict), or None when it does not exist."""
        what = f"read Secret {namespace}/{name}"
        response = self.call(
            what,
            self._core.read_namespaced_secret,
            name,
            namespace,
            missing_ok=True,
            _preload_content=False,
        )
        return None if response is None else _json(response, what)

    def create(
        self, namespace: str, name: str, body: Mapping[str, Any], *, secrets: tuple[str, ...] = ()
    ) -> None:
        """``POST`` a new Secret (409, :class:`StoreConflict`, when it exists)."""
        self.call(
            f"create Secret {namespace}/{name}",
            self._core.create_namespaced_secret,
            namespace,
            body,
            field_manager=self.field_manager,
            secrets=secrets,
            _preload_content=False,
        )

    def apply(
        self,
        namespace: str,
        name: str,
        body: Mapping[str, Any],
        what: str,
        *,
        secrets: tuple[str, ...] = (),
    ) -> None:
        """Server-side apply of ``body`` as our field manager (``force``: we own our fields)."""
        self.call(
            what,
            self._core.patch_namespaced_secret,
            name,
            namespace,
            body,
            field_manager=self.field_manager,
            force=True,
            _content_type=_APPLY,
            _preload_content=False,
            secrets=secrets,
        )

    def merge_annotations(
        self, namespace: str, name: str, changes: Mapping[str, str | None]
    ) -> None:
        """A JSON merge patch of the annotations (``None`` removes one)."""
        self.call(
            f"annotate Secret {namespace}/{name}",
            self._core.patch_namespaced_secret,
            name,
            namespace,
            {"metadata": {"annotations": dict(changes)}},
            _content_type=_MERGE_PATCH,
            _preload_content=False,
        )

    def remove_data(self, namespace: str, name: str, fields: list[str]) -> None:
        """A JSON merge patch removing data ``fields`` (they hold no secret worth keeping)."""
        self.call(
            f"clean Secret {namespace}/{name}",
            self._core.patch_namespaced_secret,
            name,
            namespace,
            {"data": dict.fromkeys(fields)},
            _content_type=_MERGE_PATCH,
            _preload_content=False,
        )

    def namespace_exists(self, namespace: str) -> bool | None:
        """Whether the namespace exists; None when not allowed to ask (or unknown)."""
        try:
            found = self.call(
                f"read namespace {namespace}",
                self._core.read_namespace,
                namespace,
                missing_ok=True,
                _preload_content=False,
            )
        except StoreUnavailable:
            raise
        except StoreError:
            return None  # e.g. a namespaced service account may not read namespaces
        return found is not None

    def list_all(self, namespace: str) -> list[dict[str, Any]]:
        """Every Secret of ``namespace`` (all pages), as JSON."""
        what = f"list Secrets in {namespace}"
        token: str | None = None
        found: list[dict[str, Any]] = []
        while True:
            kwargs: dict[str, Any] = {"limit": _PAGE_SIZE, "_preload_content": False}
            if token:
                kwargs["_continue"] = token
            page = _json(
                self.call(what, self._core.list_namespaced_secret, namespace, **kwargs), what
            )
            items = page.get("items")
            found.extend(
                i for i in (items if isinstance(items, list) else []) if isinstance(i, dict)
            )
            token = as_dict(page.get("metadata")).get("continue") or None
            if not token:
                return found
