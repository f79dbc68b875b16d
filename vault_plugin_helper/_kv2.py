"""The KV version 2 HTTP calls of the ``vault://`` store, with errors mapped to StoreError.

Requests go through the hvac client's adapter (its address, token, namespace
and TLS settings), as raw paths: hvac's KV helpers cannot send a JSON merge
patch or a ``LIST`` that tolerates chosen statuses. Messages never carry the token.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from passgeni_core import StoreConflict, StoreError, StoreUnavailable
from passgeni_core.stores import StoreURI

from ._common import scrub
from ._vault_client import transport_error

if TYPE_CHECKING:
    import hvac

__all__ = ["MISSING", "KvV2", "custom_metadata", "paths"]

#: What :meth:`KvV2.call` returns on 404.
MISSING = object()
_SAFE = "@+="


def paths(uri: StoreURI) -> tuple[str, str, str]:
    """``(mount, path, shown)``: the URI's mount and path quoted for a URL, and as shown."""
    parts = uri.parts
    mount = quote(parts[0], safe=_SAFE)
    path = "/".join(quote(p, safe=_SAFE) for p in parts[1:])
    return mount, path, f"{parts[0]}/{'/'.join(parts[1:])}"


def custom_metadata(meta: Mapping[str, Any] | None) -> dict[str, str]:
    """The ``custom_metadata`` of a secret's metadata (``{}`` when there is none)."""
    custom = (meta or {}).get("custom_metadata")
    if not isinstance(custom, dict):
        return {}
    return {str(k): str(v) for k, v in custom.items() if v is not None}


class KvV2:
    """The KV v2 endpoints (data, metadata, list, mount type) through one hvac client."""

    def __init__(self, client: hvac.Client) -> None:
        self._client = client
        self.addr = str(getattr(client.adapter, "base_uri", "") or "")

    def _token(self) -> str | None:
        token = getattr(self._client, "token", None)
        return token if isinstance(token, str) else None

    def call(
        self,
        method: str,
        url: str,
        what: str,
        *,
        body: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        allow: tuple[int, ...] = (),
    ) -> Any:
        """One request; returns the JSON body ({} when empty), or ``MISSING`` on 404.

        Statuses in ``allow`` are returned as ``int`` for the caller to handle.
        """
        import requests  # loaded already by the hvac client; named for the except clause

        try:
            response = self._client.adapter.request(
                method,
                url,
                json=body,
                headers=dict(headers or {}),
                raise_exception=False,
            )
        except requests.exceptions.RequestException as exc:
            raise transport_error(exc, self.addr, what) from None
        if isinstance(response, dict):
            return response
        status = response.status_code
        if 200 <= status < 300:
            if not response.content:
                return {}
            try:
                return response.json()
            except ValueError:
                return {}
        if status in allow:
            return status
        if status == 404:
            return MISSING
        errors = ""
        try:
            payload = response.json()
            if isinstance(payload, dict) and isinstance(payload.get("errors"), list):
                errors = "; ".join(str(e) for e in payload["errors"])
        except ValueError:
            errors = ""
        reason = scrub(errors or f"HTTP {status}", [self._token()], limit=200)
        if status == 400 and "check-and-set" in errors:
            raise StoreConflict(
                f"{what}: the secret changed since it was read (check-and-set failed); "
                "another writer is active, nothing was written"
            )
        if status in (401, 403):
            raise StoreError(f"{what}: permission denied by Vault at {self.addr} ({reason})")
        if status in (429, 472, 473) or status >= 500:
            raise StoreUnavailable(
                f"{what}: Vault at {self.addr} answered HTTP {status} ({reason})"
            )
        raise StoreError(f"{what}: Vault at {self.addr} answered HTTP {status} ({reason})")

    def read_metadata(self, uri: StoreURI) -> dict[str, Any] | None:
        mount, path, shown = paths(uri)
        data = self.call("GET", f"/v1/{mount}/metadata/{path}", f"read metadata of {shown}")
        if data is MISSING:
            return None
        meta = data.get("data") if isinstance(data, dict) else None
        return meta if isinstance(meta, dict) else {}

    def read_data(self, uri: StoreURI, version: int) -> dict[str, Any] | None:
        mount, path, shown = paths(uri)
        data = self.call(
            "GET",
            f"/v1/{mount}/data/{path}?version={version}",
            f"read {shown} version {version}",
        )
        if data is MISSING or not isinstance(data, dict):
            return None  # absent, deleted or destroyed
        inner = data.get("data")
        values = inner.get("data") if isinstance(inner, dict) else None
        return values if isinstance(values, dict) else None

    def list_folder(self, mount: str, folder: str, *, allow: tuple[int, ...] = ()) -> Any:
        """``LIST`` of the metadata under ``mount/folder`` (the answer as :meth:`call`'s)."""
        quoted = "/".join(quote(p, safe=_SAFE) for p in folder.split("/") if p)
        url = f"/v1/{quote(mount, safe=_SAFE)}/metadata/{quoted}".rstrip("/") + "/"
        return self.call("LIST", url, f"list {mount}/{folder}", allow=allow)

    def mount_info(self, mount: str) -> Any:
        """The mount's type and options (an ``int`` status when not allowed to ask)."""
        return self.call(
            "GET",
            f"/v1/sys/internal/ui/mounts/{quote(mount, safe=_SAFE)}",
            f"inspect mount {mount}",
            allow=(400, 403),
        )
