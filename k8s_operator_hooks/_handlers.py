"""The operator's kopf handlers (documented in :mod:`k8s_operator_hooks.operator`).

Importing this module registers nothing; ``register_handlers`` does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar, cast

import kopf

from passgeni_core import (
    AuthorityClient,
    AuthorityUnavailable,
    PassgeniError,
    RateLimited,
    StoreConflict,
    StoreResult,
    StoreUnavailable,
    connect,
    parse_store_uri,
    provision_into_store,
    resolve_config,
)
from passgeni_core.workflows import assess, rotate

from ._config import InvalidSetting, OperatorConfig
from ._kube import connection_info, load_configuration
from ._request import (
    KEYS_ANNOTATION,
    PRESET_ANNOTATION,
    ROTATE_ANNOTATION,
    InvalidRequest,
    SecretRequest,
    parse_request,
)
from .store import KubernetesSecretStore

__all__ = [
    "KEYS_ANNOTATION",
    "MANAGED_INDEX",
    "PRESET_ANNOTATION",
    "ROTATE_ANNOTATION",
    "STATE_PREFIX",
    "InvalidSetting",
    "OperatorConfig",
    "register_handlers",
]

log = logging.getLogger("k8s_operator_hooks.operator")

#: kopf's own progress and diff-base annotations (not ``passgeni.ai/``: kopf
#: ignores annotations under its storage prefix, and ours must stay visible).
STATE_PREFIX = "operator.passgeni.ai"
#: The kopf index of the managed Secrets (also the kwarg name kopf gives handlers).
MANAGED_INDEX = "passgeni_managed"
#: The verdict's reasons (passgeni_core.workflows.assess) for which the expiry check
#: requests a rotation: the certificate expires soon or no longer covers the key; so
#: does a certificate whose signature does not verify (status ``invalid``). Drift
#: alone (a value edited by hand) or an unknown certificate is left to a scan.
_ROTATE_REASONS = ("expiring", "expired", "revoked")
_TEMPORARY_DELAY = 15.0
_SLOW_DELAY = 60.0
_T = TypeVar("_T")


class _KeysOnlyDiffBase(kopf.AnnotationsDiffBaseStorage):
    """kopf's annotation diff base without ``data`` values: only the key names are kept.

    So a key deleted from (or added to) the data is still a change kopf reacts
    to, while no password is ever copied into an annotation.
    """

    def __init__(self, *, prefix: str, key: str = "last-handled-configuration") -> None:
        super().__init__(prefix=prefix, key=key, ignored_fields=["data", "stringData"])

    def build(self, *, body: Any, extra_fields: Any = None) -> Any:
        essence = super().build(body=body, extra_fields=extra_fields)
        if "data" in essence or "stringData" in essence:  # never, but never is a promise
            raise RuntimeError("refusing to record a Secret's data in an annotation")
        data = body.get("data")
        if isinstance(data, Mapping) and data:
            cast(dict[str, Any], essence)["dataKeys"] = sorted(str(k) for k in data)
        return essence


class _RedactBodies(logging.Filter):
    """Drop object bodies from kopf's debug lines ("Creation is in progress: {body}")."""

    MARK = " is in progress: "

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.msg
        if isinstance(msg, str) and self.MARK in msg:
            record.msg = msg.split(self.MARK, 1)[0] + " is in progress."
            record.args = None
        return True


_redactor = _RedactBodies()


class _Runtime:
    """The authority client and the store, shared by the handlers of one operator."""

    def __init__(self, config: OperatorConfig) -> None:
        self.config = config
        self._stack: contextlib.ExitStack | None = None
        self._client: AuthorityClient | None = None
        self._store: KubernetesSecretStore | None = None
        self._locks: dict[tuple[str, str], threading.Lock] = {}
        self._locks_guard = threading.Lock()

    def start(self) -> None:
        config = resolve_config()
        if not config.configured or config.embedded:
            # A throwaway in-process authority would certify cluster credentials
            # with certificates nobody can check: the operator never runs one.
            raise kopf.PermanentError(
                "no authority configured [authority_not_configured]: set PASSGENI_URL and "
                "PASSGENI_API_KEY (the operator does not run an embedded authority)"
            )
        stack = contextlib.ExitStack()
        try:
            self._client = stack.enter_context(connect(config))
            store = KubernetesSecretStore()
            stack.callback(store.close)
            self._store = store
        except BaseException:
            stack.close()
            raise
        self._stack = stack

    def stop(self) -> None:
        if self._stack is not None:
            self._stack.close()
        self._stack = self._client = self._store = None

    @property
    def client(self) -> AuthorityClient:
        if self._client is None:
            raise kopf.TemporaryError("the operator is not started yet", delay=5)
        return self._client

    @property
    def store(self) -> KubernetesSecretStore:
        if self._store is None:
            raise kopf.TemporaryError("the operator is not started yet", delay=5)
        return self._store

    @contextlib.contextmanager
    def locked(self, namespace: str, name: str) -> Iterator[None]:
        """One writer per Secret in this process (the timer and change handlers may overlap)."""
        with self._locks_guard:
            lock = self._locks.setdefault((namespace, name), threading.Lock())
        with lock:
            yield


def _guard(body: kopf.Body, action: Callable[[], _T]) -> _T:
    """Run ``action`` mapping failures to kopf's permanent and temporary errors."""
    try:
        return action()
    except InvalidRequest as exc:
        kopf.event(body, type="Warning", reason=exc.reason, message=exc.message[:1000])
        raise kopf.PermanentError(exc.message) from None
    except (StoreUnavailable, AuthorityUnavailable, StoreConflict) as exc:
        raise kopf.TemporaryError(exc.message, delay=_TEMPORARY_DELAY) from None
    except RateLimited as exc:
        delay = getattr(exc, "retry_after", None)
        raise kopf.TemporaryError(
            exc.message, delay=float(delay) if delay else _SLOW_DELAY
        ) from None
    except PassgeniError as exc:
        kopf.event(body, type="Warning", reason="PassgeniError", message=exc.message[:1000])
        raise kopf.TemporaryError(exc.message, delay=_SLOW_DELAY) from None


def _label(request: SecretRequest, key: str) -> str:
    return f"k8s:{request.namespace}/{request.name}#{key}"


def _report(body: kopf.Body, key: str, result: StoreResult, logger: Any) -> None:
    if result.outcome in ("unchanged",):
        return
    message = f"{key}: {result.outcome}, certificate {result.cert_id} ({result.cert_url})"
    if result.previous_cert_id:
        revoked = "revoked" if result.previous_revoked else "NOT revoked"
        message += f"; previous certificate {result.previous_cert_id} {revoked}"
    for warning in result.warnings:
        message += f"; warning: {warning}"
    reason = "Rotated" if result.outcome == "rotated" else "Provisioned"
    kopf.event(body, type="Normal", reason=reason, message=message[:1000])
    logger.info(message)


def _reconcile(runtime: _Runtime, body: kopf.Body, logger: Any) -> None:
    """Fill in missing keys; rotate the keys ``passgeni.ai/rotate`` names, then remove it.

    The event's body only says which Secret to look at: its annotations are
    read again from the API server under the per-Secret lock, so an event that
    is already stale (e.g. one still carrying a ``passgeni.ai/rotate`` that an
    earlier run removed after rotating) never repeats the work.
    """
    store, client = runtime.store, runtime.client
    meta = body.get("metadata") or {}
    namespace, name = str(meta.get("namespace") or ""), str(meta.get("name") or "")
    with runtime.locked(namespace, name):
        fresh = store.read_metadata(namespace, name)
        if fresh is None:
            return  # deleted meanwhile
        request = parse_request({"metadata": fresh})
        pending = list(request.rotate_keys)
        for key in request.keys:
            uri = parse_store_uri(f"k8s://{request.namespace}/{request.name}#{key}")
            if key in pending:
                result = rotate(client, store, uri, request.preset, label=_label(request, key))
                _report(body, key, result, logger)
                pending.remove(key)
                # Progress is recorded at once: a retry after a later key fails
                # does not rotate this one again.
                store.merge_annotations(
                    request.namespace,
                    request.name,
                    {ROTATE_ANNOTATION: ",".join(pending) if pending else None},
                )
            elif store.read(uri) is None:  # create-if-absent: a present key is never replaced
                result = provision_into_store(
                    client, store, uri, request.preset, label=_label(request, key)
                )
                _report(body, key, result, logger)


def _due_for_rotation(
    runtime: _Runtime, namespace: str, name: str, now: datetime
) -> tuple[str, ...]:
    """The managed keys of a Secret whose certificate expires within the window (or is
    expired, revoked or unverifiable), by the judge's verdict."""
    meta = runtime.store.read_metadata(namespace, name)
    if meta is None:
        return ()
    try:
        request = parse_request({"metadata": meta})
    except InvalidRequest:
        return ()  # the change handler reports it
    if request.rotate_value is not None:
        return ()  # a rotation is already requested
    due: list[str] = []
    window = runtime.config.rotate_window / timedelta(days=1)
    for key in request.keys:
        current = runtime.store.read(parse_store_uri(f"k8s://{namespace}/{name}#{key}"))
        if current is None or current.refs is None:
            continue
        verdict = assess(
            runtime.client, runtime.store.system, current, now=now, expiring_days=window
        )
        verdict.raise_for_error()  # never rotate because the authority could not be asked
        if verdict.status == "invalid" or verdict.has(*_ROTATE_REASONS):
            due.append(key)
    return tuple(due)


def _check_one(runtime: _Runtime, namespace: str, name: str) -> None:
    """One Secret's expiry check: request the rotation of its due keys (never raises)."""
    try:
        due = _due_for_rotation(runtime, namespace, name, datetime.now(UTC))
        if due:
            log.info(
                "%s/%s: certificate(s) of %s expire within %g days, expired, were revoked "
                "or do not verify; requesting rotation",
                namespace,
                name,
                ", ".join(due),
                runtime.config.rotate_window / timedelta(days=1),
            )
            runtime.store.merge_annotations(namespace, name, {ROTATE_ANNOTATION: ",".join(due)})
    except PassgeniError as exc:
        log.warning("%s/%s: expiry check failed: %s", namespace, name, exc.message)
    except Exception as exc:  # keep checking the others
        log.warning("%s/%s: expiry check failed: %s", namespace, name, type(exc).__name__)


async def _expiry_checks(runtime: _Runtime, managed: Any) -> None:
    """Every ``check_interval``: request rotation (``passgeni.ai/rotate: KEYS``) of due keys.

    ``managed`` is the live kopf index of the managed Secrets (``{(namespace,
    name): ...}``), read on kopf's event loop, the only place kopf changes it.
    Each check's blocking calls (the API server, the authority) run in a worker
    thread. One task per operator on kopf's loop, not a ``@kopf.timer``: kopf
    puts a finalizer on every object a timer serves (by design, kopf 1.45
    ``on.timer``: ``requires_finalizer=True``), which would block deleting
    users' Secrets, and their namespaces, whenever the operator is not running
    or after it is uninstalled. The rotation itself is done by the change
    handler, with its retries and events.
    """
    while True:
        await asyncio.sleep(runtime.config.check_interval)
        for namespace, name in sorted(managed):
            await asyncio.to_thread(_check_one, runtime, namespace, name)


def _managed_key(body: Mapping[str, Any]) -> tuple[str, str]:
    meta = body.get("metadata") or {}
    return (str(meta.get("namespace") or ""), str(meta.get("name") or ""))


def register_handlers(
    registry: kopf.OperatorRegistry | None = None,
    config: OperatorConfig | None = None,
) -> kopf.OperatorRegistry:
    """Register the operator's handlers on ``registry`` (default: kopf's default registry).

    ``config`` defaults to :meth:`OperatorConfig.from_environ` (which raises
    :class:`InvalidSetting` for a setting that cannot work). Returns the registry.
    """
    registry = registry if registry is not None else kopf.get_default_registry()
    config = config if config is not None else OperatorConfig.from_environ()
    runtime = _Runtime(config)
    managed: dict[str, Any] = {"annotations": {PRESET_ANNOTATION: kopf.PRESENT}}
    tasks: list[asyncio.Task[None]] = []

    # The managed Secrets, kept by kopf from its watch (no handler of ours tracks them).
    @kopf.index("v1", "secrets", registry=registry, id=MANAGED_INDEX, **managed)
    def passgeni_managed(body: kopf.Body, **_: Any) -> dict[tuple[str, str], bool]:
        return {_managed_key(body): True}

    @kopf.on.startup(registry=registry, id="passgeni-startup")
    async def startup(settings: kopf.OperatorSettings, **kwargs: Any) -> None:
        settings.persistence.diffbase_storage = _KeysOnlyDiffBase(
            prefix=STATE_PREFIX, key="last-handled-configuration"
        )
        settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=STATE_PREFIX)
        logging.getLogger("kopf.objects").addFilter(_redactor)
        await asyncio.to_thread(runtime.start)
        index = kwargs[MANAGED_INDEX]
        tasks.append(asyncio.create_task(_expiry_checks(runtime, index), name="passgeni-expiry"))

    @kopf.on.cleanup(registry=registry, id="passgeni-cleanup")
    async def cleanup(**_: Any) -> None:
        while tasks:
            task = tasks.pop()
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await asyncio.to_thread(runtime.stop)

    @kopf.on.probe(registry=registry, id="managed_secrets")
    def managed_secrets(**kwargs: Any) -> int:
        """The liveness endpoint's report: how many Secrets this operator manages."""
        return len(kwargs[MANAGED_INDEX])

    @kopf.on.login(registry=registry, id="passgeni-login")
    def login(**_: Any) -> kopf.ConnectionInfo:
        try:
            configuration = load_configuration()
        except PassgeniError as exc:
            raise kopf.LoginError(exc.message) from None
        return kopf.ConnectionInfo(**connection_info(configuration))

    def reconcile(body: kopf.Body, logger: Any, **_: Any) -> None:
        _guard(body, lambda: _reconcile(runtime, body, logger))

    for decorator in (kopf.on.resume, kopf.on.create, kopf.on.update):
        decorator("v1", "secrets", registry=registry, id="passgeni-reconcile", **managed)(reconcile)
    return registry
