"""The KV version 2 HTTP calls of the ``vault://`` store, with errors mapped to StoreError.

Requests go through the hvac client's adapter (its address, token, namespace
and TLS settings), as raw paths: hvac's KV helpers cannot send a JSON merge
patch or a ``LIST`` that tolerates chosen statuses. Messages never carry the token.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from passgeni_core import StoreConflict, StoreError, StoreNotFound, StoreUnavailable
from passgeni_core.stores import StoreURI

from ._common import scrub
from ._vault_client import transport_error

if TYPE_CHECKING:
    import hvac

__all__ = ["MISSING", "KvV2", "Mount", "Where", "custom_metadata", "missing_capabilities"]

#: What :meth:`KvV2.call` returns on 404.
MISSING = object()
_SAFE = "@+="


def _quote(path: str) -> str:
    return "/".join(quote(p, safe=_SAFE) for p in path.split("/") if p)


@dataclass(frozen=True)
class Mount:
    """A secrets engine's mount as Vault reports it (``kind`` None: not known)."""

    path: str
    kind: str | None = None
    version: str | None = None

    @property
    def is_kv2(self) -> bool | None:
        """True/False when Vault said, None when it could not be asked."""
        if self.kind is None:
            return None
        return self.kind in ("kv", "generic") and self.version == "2"


@dataclass(frozen=True)
class Where:
    """A location split at its mount: ``(mount, path)`` quoted for URLs, and as shown."""

    mount: Mount
    path: str
    shown: str

    @property
    def url_mount(self) -> str:
        return _quote(self.mount.path)

    @property
    def url_path(self) -> str:
        return _quote(self.path)


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
        self.namespace: str | None = getattr(client.adapter, "namespace", None) or None
        #: Mounts Vault named, by path (mounts never nest, so the longest prefix is the one).
        self._mounts: dict[str, Mount] = {}
        #: Locations whose mount Vault would not name (assumed: the first segment).
        self._assumed: dict[str, Mount] = {}

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
        errors = ""
        try:
            payload = response.json()
            if isinstance(payload, dict) and isinstance(payload.get("errors"), list):
                errors = "; ".join(str(e) for e in payload["errors"])
        except ValueError:
            errors = ""
        if status == 404:
            if "no handler for route" in errors:
                raise StoreNotFound(
                    f"{what}: no secrets engine is mounted at this path in Vault at {self.addr}"
                    + (f" (namespace {self.namespace})" if self.namespace else "")
                )
            return MISSING
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

    def where(self, location: str) -> Where:
        """``location`` split at its mount, found from Vault (``sys/internal/ui/mounts``).

        Mounts may be nested paths (``team/payments``): the mount is never assumed to be
        the first segment unless Vault will not say (no permission to ask), as the
        ``vault kv`` CLI does.
        """
        found = self._cached(location) or self._assumed.get(location)
        if found is None:
            found = self._ask_mount(location)
        path = location[len(found.path) :].strip("/")
        return Where(mount=found, path=path, shown=location)

    def _cached(self, location: str) -> Mount | None:
        best: Mount | None = None
        for mount in self._mounts.values():
            inside = location == mount.path or location.startswith(mount.path + "/")
            if inside and (best is None or len(mount.path) > len(best.path)):
                best = mount
        return best

    def _ask_mount(self, location: str) -> Mount:
        info = self.call(
            "GET",
            f"/v1/sys/internal/ui/mounts/{_quote(location)}",
            f"inspect the mount of {location}",
            allow=(400, 403),
        )
        data = info.get("data") if isinstance(info, dict) else None
        path = str(data.get("path") or "").strip("/") if isinstance(data, dict) else ""
        if (
            not isinstance(data, dict)
            or not path
            or not (location == path or location.startswith(path + "/"))
        ):
            # Not allowed to ask (or no such mount): the first segment, as `vault kv` does.
            assumed = Mount(path=location.split("/", 1)[0])
            self._assumed[location] = assumed
            return assumed
        version = str((data.get("options") or {}).get("version") or "1")
        mount = Mount(path=path, kind=str(data.get("type") or ""), version=version)
        self._mounts[path] = mount
        return mount

    def read_metadata(self, uri: StoreURI) -> dict[str, Any] | None:
        at = self.where(uri.location)
        data = self.call(
            "GET",
            f"/v1/{at.url_mount}/metadata/{at.url_path}",
            f"read metadata of {at.shown}",
        )
        if data is MISSING:
            return None
        meta = data.get("data") if isinstance(data, dict) else None
        return meta if isinstance(meta, dict) else {}

    def read_current(self, uri: StoreURI) -> tuple[int, dict[str, Any], dict[str, str]] | None:
        """The current version, its values and the custom metadata, from one ``GET`` of the
        data path (its answer carries the secret's ``custom_metadata``); None when that answer
        cannot say (never written, its latest version deleted or destroyed, or a server whose
        answer has no ``custom_metadata``): then the metadata path decides, as before.
        """
        at = self.where(uri.location)
        data = self.call("GET", f"/v1/{at.url_mount}/data/{at.url_path}", f"read {at.shown}")
        inner = data.get("data") if isinstance(data, dict) else None
        if not isinstance(inner, dict):
            return None
        meta = inner.get("metadata")
        values = inner.get("data")
        if not isinstance(meta, dict) or "custom_metadata" not in meta:
            return None
        version = meta.get("version")
        if not isinstance(version, int) or version < 1 or not isinstance(values, dict):
            return None
        return version, values, custom_metadata(meta)

    def read_data(self, uri: StoreURI, version: int) -> dict[str, Any] | None:
        at = self.where(uri.location)
        data = self.call(
            "GET",
            f"/v1/{at.url_mount}/data/{at.url_path}?version={version}",
            f"read {at.shown} version {version}",
        )
        if data is MISSING or not isinstance(data, dict):
            return None  # absent, deleted or destroyed
        inner = data.get("data")
        values = inner.get("data") if isinstance(inner, dict) else None
        return values if isinstance(values, dict) else None

    def list_folder(self, at: Where, *, allow: tuple[int, ...] = ()) -> Any:
        """``LIST`` of the metadata under ``at`` (the answer as :meth:`call`'s)."""
        url = f"/v1/{at.url_mount}/metadata/{at.url_path}".rstrip("/") + "/"
        return self.call("LIST", url, f"list {at.shown}", allow=allow)

    def capabilities(self, paths: list[str]) -> dict[str, set[str]] | None:
        """The token's capabilities on each API path (``sys/capabilities-self``).

        None when Vault will not say (an old server, or a policy denying the endpoint
        that the default policy grants): the write itself is then the check.
        """
        answer = self.call(
            "POST",
            "/v1/sys/capabilities-self",
            "check the token's capabilities",
            body={"paths": paths},
            allow=(400, 403, 405),
        )
        data = answer.get("data") if isinstance(answer, dict) else None
        if not isinstance(data, dict):
            return None
        out: dict[str, set[str]] = {}
        for path in paths:
            caps = data.get(path)
            if not isinstance(caps, list):
                return None
            out[path] = {str(c) for c in caps}
        return out

    def read_latest(
        self, uri: StoreURI, *, denied_ok: bool = False
    ) -> tuple[int, dict[str, Any] | None]:
        """The latest version of a secret and its data: ``(0, None)`` when it never existed,
        ``(-1, None)`` when the token may not read it and ``denied_ok`` (the capability
        check then names what it lacks).

        One ``GET`` of the data path (the proof record needs ``read`` there only); a latest
        version deleted by hand is found through the metadata, for check-and-set.
        """
        at = self.where(uri.location)
        data = self.call(
            "GET",
            f"/v1/{at.url_mount}/data/{at.url_path}",
            f"read {at.shown}",
            allow=(403,) if denied_ok else (),
        )
        if data == 403:
            return -1, None
        inner = data.get("data") if isinstance(data, dict) else None
        if isinstance(inner, dict):
            version = (inner.get("metadata") or {}).get("version")
            values = inner.get("data")
            if isinstance(version, int):
                return version, values if isinstance(values, dict) else None
        # Never written (the usual case), or its latest version deleted: the metadata says
        # which; a token with no access to the metadata path writes as if never written.
        meta = self.call(
            "GET",
            f"/v1/{at.url_mount}/metadata/{at.url_path}",
            f"read metadata of {at.shown}",
            allow=(403,),
        )
        inner_meta = meta.get("data") if isinstance(meta, dict) else None
        version = inner_meta.get("current_version") if isinstance(inner_meta, dict) else None
        return (version if isinstance(version, int) else 0), None

    def denied(
        self,
        pairs: list[tuple[str, str, str | None]],
        *,
        exists: bool,
        proof_exists: bool | None = None,
    ) -> dict[int, list[str]]:
        """For ``(data path, metadata path, proof data path)``: what the token lacks, by index.

        ``proof_exists`` None: not known (bulk planning), ``create`` or ``update`` will do.
        """
        caps = self.capabilities(sorted({p for pair in pairs for p in pair if p}))
        if caps is None:
            return {}
        out = {}
        for i, (data_path, meta_path, proof_path) in enumerate(pairs):
            missing = missing_capabilities(
                caps,
                data_path,
                meta_path,
                exists=exists,
                proof_path=proof_path,
                proof_exists=proof_exists,
            )
            if missing:
                out[i] = missing
        return out


def missing_capabilities(
    caps: dict[str, set[str]],
    data_path: str,
    meta_path: str,
    *,
    exists: bool,
    proof_path: str | None = None,
    proof_exists: bool | None = None,
) -> list[str]:
    """What the token lacks to write a secret's value, metadata and proof record as the
    store does.

    The value: ``create`` for a new secret, ``update`` for a new version of one. The
    metadata: ``patch`` (merge), else ``read`` and ``update`` (read-merge-write). The
    proof record (sibling layout): ``read``, and ``create`` or ``update`` as for a value.
    """

    def has(path: str, *wanted: str) -> bool:
        got = caps.get(path, set())
        return "root" in got or ("deny" not in got and all(w in got for w in wanted))

    missing = []
    verb = "update" if exists else "create"
    if not has(data_path, verb):
        missing.append(f"{verb} on {data_path}")
    if not (has(meta_path, "patch") or has(meta_path, "read", "update")):
        missing.append(f"patch (or read and update) on {meta_path}")
    if proof_path is not None:
        if proof_exists is None:
            writable = has(proof_path, "create") or has(proof_path, "update")
            proof_verb = "create or update"
        else:
            proof_verb = "update" if proof_exists else "create"
            writable = has(proof_path, proof_verb)
        if not (writable and has(proof_path, "read")):
            missing.append(f"read and {proof_verb} on {proof_path} (the proof record)")
    return missing
