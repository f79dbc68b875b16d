"""The ``kmock`` Kubernetes API emulator served over real HTTP.

Kubernetes emulator (``kmock`` 0.8, ``kubernetes`` client 37), verified
against this module's ``KubeEmulator``:

* Works: ``create_namespaced_secret`` (POST), ``read_namespaced_secret``,
  ``list_namespaced_secret`` / ``list_secret_for_all_namespaces`` (the list
  has ``metadata.resourceVersion == "..."``), ``delete_namespaced_secret``
  (returns the deleted object, not a ``Status``; a second delete is 404),
  re-create after delete, watch streams (``kubernetes.watch.Watch``: ADDED
  for existing objects, then MODIFIED/DELETED; the server ignores
  ``timeoutSeconds``, so stop the watch yourself), core ``v1/events``.
* PATCH: a dict body is applied as a plain recursive JSON merge whatever the
  Content-Type (strategic-merge, the client's default, and merge-patch alike):
  dicts merge, ``None`` deletes a key, lists are replaced whole (no
  strategic-merge list semantics, no ``$patch`` directives). A list body is
  applied as RFC 6902 JSON-patch (``application/json-patch+json`` works).
* Server-side apply is NOT supported, only tolerated: ``PATCH`` with
  ``Content-Type: application/apply-patch+yaml``, ``field_manager=...`` and
  ``force=True`` is the same plain JSON merge. On an existing object it
  returns 200 and the merged object (no ``managedFields``, no conflicts,
  ``force`` ignored, fields the manager stops sending are NOT removed). On a
  missing object it fails with 404 "Object Not Found" (real SSA creates it).
  The body must be JSON (the Python client sends JSON, which is valid YAML):
  a real YAML text body is silently ignored (200, object unchanged).
* ``PUT`` (``replace_namespaced_secret``) is not emulated: 404 "Endpoint Not
  Found". So code under test must update with PATCH (or create + patch).
* ``labelSelector`` and ``fieldSelector`` are ignored: lists return every
  object of the namespace (or of all namespaces).
* Nothing is added to stored objects: no ``uid``, ``resourceVersion``,
  ``creationTimestamp``, ``generation``, ``managedFields``; no defaulting
  (``type`` stays absent), no validation (``data`` is stored as sent,
  ``stringData`` is not folded into ``data``); ``metadata.namespace`` is
  stored only if the body had it. Do not rely on these in tests.
* ``metadata.generateName``: plain kmock ignores it (the object is stored
  under the name ``None``, so a second such create in the namespace is 409).
  ``KubeEmulator`` adds the one fix-up here: like the API server, it names
  the object ``generateName`` + 5 random characters.
* Errors: creating an existing object is 409, reading a missing one is 404,
  both with a ``Status`` body (``ApiException.status`` works).
* Namespaces are unusable as objects: ``list_namespace`` and
  ``create_namespace`` fail with 500 (``/api/v1/namespaces`` is parsed as a
  namespace prefix without a name) and ``read_namespace`` with 404.
  ``v1/namespaces`` is only registered for discovery. Hence kopf must run
  with ``-A``/``--all-namespaces`` (not ``--namespace``), and product code
  must not need to create namespaces.
* Discovery: ``/api``, ``/api/v1``, ``/apis``, ``/version`` answer (core
  ``groupVersion`` is reported as ``"/v1"``), but the client's
  ``CoreApi().get_api_versions()`` and ``CoreV1Api().get_api_resources()``
  request ``/api/`` and ``/api/v1/`` with a trailing slash and get 404.
  Unregistered resources are 404 on list; any resource path is stored on
  create.
* kopf (1.45, ``kopf.testing.KopfRunner(["run", "--standalone", "-A",
  ...])``) was verified end to end on ``KubeEmulator``: it discovers through
  ``/api``, ``/apis``, ``/api/v1``, lists and watches ``/api/v1/secrets``
  cluster-wide, runs an ``@kopf.on.create("v1", "secrets", ...)`` handler,
  merge-PATCHes its ``patch`` and ``kopf.zalando.org/last-handled-configuration``
  annotations, and posts events (``kopf.info(body, reason=..., message=...)``)
  as ``POST /api/v1/namespaces/NS/events`` with ``generateName``. It needs:
  discovery of every resource it serves (``register_resource(...)`` for
  CRDs; ``v1/secrets`` is registered by default), core ``v1/events``
  (registered by default), ``-A`` (namespace listing is broken, see above),
  ``--standalone`` (no peering CRDs) and ``@kopf.on.login`` returning
  ``kopf.ConnectionInfo(server=emulator.url)``. Note kopf 1.45 does not turn
  handler log lines into events unless ``settings.posting.loggers = True``.
* The ``kmock`` wheel registers a pytest plugin (``pytest11`` entry point
  ``kmock``) that imports ``pytest_asyncio``: pytest does not even start
  unless ``pytest-asyncio`` is installed or the plugin is disabled with
  ``-p no:kmock``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import json
import logging
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from types import TracebackType
from typing import Any, Self

from tests.support.process import (
    LOCALHOST,
    ServerError,
    WaitTimeoutError,
    free_port,
    http_status,
    wait_until,
)

# --------------------------------------------------------------------------------------------
# Kubernetes API emulator (kmock) served over HTTP from a background thread.
# --------------------------------------------------------------------------------------------

ALL_VERBS: frozenset[str] = frozenset(
    {"create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"}
)

#: Resources registered for discovery by default: {"group/version/plural": info}.
DEFAULT_KUBE_RESOURCES: dict[str, dict[str, Any]] = {
    "v1/secrets": {"kind": "Secret", "singular": "secret", "namespaced": True},
    "v1/namespaces": {
        "kind": "Namespace",
        "singular": "namespace",
        "namespaced": False,
        "verbs": ALL_VERBS - {"deletecollection"},
    },
    "v1/events": {"kind": "Event", "singular": "event", "namespaced": True},
}


_GENERATE_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # what the API server uses


@dataclasses.dataclass(frozen=True)
class RecordedRequest:
    """One request the emulator served, as RBAC sees it (``verb`` on ``group/resource``)."""

    method: str
    path: str
    #: ``get list watch create patch update delete``; None for a non-resource URL (discovery).
    verb: str | None
    group: str | None
    resource: str | None
    namespace: str | None
    name: str | None
    #: The ``Authorization`` header as sent (tells one client's requests from another's).
    authorization: str = ""

    @classmethod
    def of(cls, request: Any) -> RecordedRequest:
        method = str(getattr(request.method, "value", request.method) or "").upper()
        resource = request.resource
        verb: str | None = None
        if resource is not None and getattr(resource, "plural", None):
            watch = str((request.params or {}).get("watch", "")).lower() in ("true", "1")
            verb = {
                "POST": "create",
                "PATCH": "patch",
                "PUT": "update",
                "DELETE": "delete",
            }.get(method)
            if method == "GET":
                verb = "watch" if watch else ("get" if request.name else "list")
        return cls(
            method=method,
            path=str(request.url.path),
            verb=verb,
            group=(resource.group or "") if verb else None,
            resource=resource.plural if verb else None,
            namespace=request.namespace,
            name=request.name,
            authorization=str((request.headers or {}).get("Authorization", "")),
        )


@functools.cache
def _emulator_class() -> Any:
    """``kmock.KubernetesEmulator`` plus ``metadata.generateName`` on create.

    Plain kmock stores an object created with only ``generateName`` under the
    name ``None``, so the second such object in a namespace (e.g. the second
    event kopf posts) gets 409. Like the real API server, give it a name made
    of the prefix and 5 random characters.
    """
    import kmock

    class PassGeniKubernetesEmulator(kmock.KubernetesEmulator):
        #: Where each request is recorded (``KubeEmulator.requests``), if set.
        recorded: list[RecordedRequest] | None = None

        async def _handle(self, request: Any) -> Any:
            if self.recorded is not None:
                self.recorded.append(RecordedRequest.of(request))
            data = request.data
            if request.action == kmock.action.CREATE and isinstance(data, dict):
                meta = data.get("metadata")
                if isinstance(meta, dict) and not meta.get("name") and meta.get("generateName"):
                    suffix = "".join(secrets.choice(_GENERATE_NAME_ALPHABET) for _ in range(5))
                    meta["name"] = f"{meta['generateName']}{suffix}"
            return await super()._handle(request)

    return PassGeniKubernetesEmulator


class KubeEmulator:
    """``kmock.KubernetesEmulator`` on ``http://127.0.0.1:port`` (stateful, in memory).

    The aiohttp server runs in an asyncio loop on a daemon thread. Discovery
    is registered for ``v1/secrets``, ``v1/namespaces`` and ``v1/events``
    (plus ``resources``); add CRDs with :meth:`register_resource`. See the
    module docstring for what the emulator does and does not emulate.

    Attributes: ``url``, ``port``, ``emulator`` (the kmock handler: use only
    through :meth:`call` while running, it lives on the server's loop).
    Data is lost on stop(); ``start()`` again reuses the port.
    """

    def __init__(
        self,
        *,
        port: int | None = None,
        resources: Mapping[str, Mapping[str, Any]] | None = None,
        startup_timeout: float = 10.0,
        record_requests: bool = False,
    ) -> None:
        self.port = port if port is not None else free_port()
        self.startup_timeout = startup_timeout
        self._resources: dict[str, dict[str, Any]] = {
            key: dict(value) for key, value in DEFAULT_KUBE_RESOURCES.items()
        }
        for key, value in (resources or {}).items():
            self._resources[key] = dict(value)
        self.emulator: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stop_event: asyncio.Event | None = None
        self._error: BaseException | None = None
        self.startup_seconds: float | None = None
        #: With ``record_requests=True``: every request served, in order.
        self.requests: list[RecordedRequest] = []
        self.record_requests = record_requests

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def url(self) -> str:
        return f"http://{LOCALHOST}:{self.port}"

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def register_resource(
        self,
        key: str,
        *,
        kind: str,
        namespaced: bool,
        singular: str | None = None,
        verbs: Iterable[str] = ALL_VERBS,
        subresources: Iterable[str] = (),
    ) -> None:
        """Add ``key`` (``"v1/secrets"``, ``"kopf.dev/v1/kopfpeerings"``...) to discovery."""
        info = {
            "kind": kind,
            "namespaced": namespaced,
            "singular": singular or kind.lower(),
            "verbs": set(verbs),
            "subresources": set(subresources),
        }
        self._resources[key] = info
        if self.running:
            self.call(lambda emulator: self._apply_resource(emulator, key, info))

    @staticmethod
    def _apply_resource(emulator: Any, key: str, info: Mapping[str, Any]) -> None:
        import kmock

        emulator.resources[key] = kmock.ResourceInfo(
            kind=info["kind"],
            namespaced=info["namespaced"],
            singular=info.get("singular") or str(info["kind"]).lower(),
            verbs=set(info.get("verbs", ALL_VERBS)),
            subresources=set(info.get("subresources", ())),
        )

    def call(self, fn: Callable[[Any], Any], timeout: float = 10.0) -> Any:
        """Run ``fn(emulator)`` on the server's loop thread and return its result."""
        loop = self._loop
        if loop is None or not self.running:
            raise ServerError("kube emulator is not running")
        emulator = self.emulator

        async def invoke() -> Any:
            return fn(emulator)

        return asyncio.run_coroutine_threadsafe(invoke(), loop).result(timeout)

    def objects(self) -> dict[tuple[str, str | None, str], dict[str, Any]]:
        """Snapshot of live stored objects: ``{(resource, namespace, name): body}``."""

        def snapshot(emulator: Any) -> dict[tuple[str, str | None, str], dict[str, Any]]:
            result: dict[tuple[str, str | None, str], dict[str, Any]] = {}
            for (resource, namespace, name), obj in emulator.objects.items():
                if not obj.deleted:
                    key = f"{resource.group}/{resource.version}/{resource.plural}".lstrip("/")
                    result[(key, namespace, name)] = json.loads(json.dumps(obj.raw))
            return result

        result: dict[tuple[str, str | None, str], dict[str, Any]] = self.call(snapshot)
        return result

    def reset(self) -> None:
        """Forget all stored objects (discovery registrations stay)."""
        self.call(lambda emulator: emulator.objects.clear())

    def start(self) -> None:
        """Serve in a background thread; returns when the port accepts HTTP requests."""
        if self.running:
            raise ServerError("kube emulator is already running")
        began = time.monotonic()
        import kmock  # noqa: F401  (fail early, in the caller's thread, if missing)

        ready = threading.Event()
        self._error = None
        self._thread = threading.Thread(
            target=self._thread_main, args=(ready,), name=f"kmock-{self.port}", daemon=True
        )
        self._thread.start()
        if not ready.wait(self.startup_timeout):
            self.stop()
            raise WaitTimeoutError(f"kmock emulator did not start on {self.url}")
        if self._error is not None:
            error = self._error
            self.stop()
            raise ServerError(f"kmock emulator failed to start on {self.url}: {error!r}") from error
        wait_until(
            lambda: http_status(f"{self.url}/api/v1", timeout=1.0) == 200,
            self.startup_timeout,
            f"kmock emulator discovery at {self.url}/api/v1",
        )
        self.startup_seconds = time.monotonic() - began

    def _thread_main(self, ready: threading.Event) -> None:
        # The emulator's per-request access log is noise, and a test that captures
        # logging may have closed its stream by the time this thread writes. A
        # level, not ``disabled``: every uvicorn.Config runs logging.config's
        # dictConfig, which re-enables loggers it does not configure.
        logging.getLogger("aiohttp.access").setLevel(logging.CRITICAL + 1)
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve(ready))
        except BaseException as exc:
            self._error = exc
        finally:
            ready.set()
            with contextlib.suppress(Exception):
                loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _serve(self, ready: threading.Event) -> None:
        import kmock

        self._stop_event = asyncio.Event()
        async with (
            _emulator_class()() as emulator,
            kmock.Server(emulator, host=LOCALHOST, port=self.port),
        ):
            for key, info in self._resources.items():
                self._apply_resource(emulator, key, info)
            if self.record_requests:
                emulator.recorded = self.requests
            self.emulator = emulator
            ready.set()
            await self._stop_event.wait()

    def stop(self) -> None:
        """Stop serving (stored objects are lost). No-op if not running."""
        loop, thread, stop_event = self._loop, self._thread, self._stop_event
        if loop is not None and thread is not None and thread.is_alive():
            if stop_event is not None:
                loop.call_soon_threadsafe(stop_event.set)
            thread.join(timeout=10.0)
            if thread.is_alive():
                raise ServerError("kube emulator thread did not stop within 10 s")
        self._thread = None
        self._loop = None
        self._stop_event = None
        self.emulator = None

    def close(self) -> None:
        self.stop()

    def api_client(self) -> Any:
        """A ``kubernetes.client.ApiClient`` for this emulator (kubernetes imported lazily)."""
        from kubernetes import client

        configuration = client.Configuration(host=self.url)
        configuration.verify_ssl = False
        configuration.proxy = None
        return client.ApiClient(configuration)


# --------------------------------------------------------------------------------------------
# Headless Chromium.
# --------------------------------------------------------------------------------------------
