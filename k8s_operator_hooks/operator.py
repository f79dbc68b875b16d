"""Kopf handlers: Secrets annotated ``passgeni.ai/preset`` get certified credentials.

Run with ``kopf run -m k8s_operator_hooks.operator --all-namespaces`` (or
``--namespace NS``), or ``passgeni operator`` (see :mod:`k8s_operator_hooks.cli`).

What a Secret asks for, with annotations::

    passgeni.ai/preset: soc2            the preset (required; an unknown one fails permanently)
    passgeni.ai/keys: db_password,api   the data keys to manage (default: password)
    passgeni.ai/rotate: "true"          rotate every managed key now (or a comma list of keys);
                                        removed by the operator once done

For each managed key that is missing from the Secret's data, the operator
generates a password locally for the preset, certifies it with the authority
(``PASSGENI_URL``, ``PASSGENI_API_KEY``, read through
``passgeni_core.resolve_config``) and stores it with the ``k8s://`` backend in
the nothing-lost order of ``passgeni_core.workflows.provision_into_store``: the value, binding key and
certificate references in ``data``, then the ``passgeni.ai/cert-*``
annotations. Create-if-absent: a key already present is never regenerated,
whatever else changes in the Secret (a key deleted from the data is a change:
it is generated again). Rotation (on ``passgeni.ai/rotate``) stores the new
value first and revokes the old certificate only afterwards (reason
``rotated``), then removes the annotation (or narrows it to the keys left, so a
retry never rotates a key twice). An expiry check runs every
``check_interval`` over the managed Secrets and requests the rotation of keys
whose certificate expires within the window, or is expired, revoked or does
not verify (as the one judge, ``passgeni_core.workflows.assess``, finds it,
signature verified), by setting ``passgeni.ai/rotate`` to those keys. It is one loop per operator rather than a kopf timer, because
kopf puts a finalizer on every object a timer serves, which would block
deleting users' Secrets whenever the operator is not running. The operator
adds no finalizers.

Failures: an unknown preset, a malformed key list or rotate value posts a
``Warning`` event on the Secret and fails permanently (``kopf.PermanentError``:
no retries until the annotations change); an unreachable authority or API
server, rate limiting or a concurrent writer raise ``kopf.TemporaryError``
(kopf retries with a delay). Successful writes post ``Normal`` events naming
the certificate (never a secret).

Configuration (environment, read when the handlers are registered):

``PASSGENI_OPERATOR_ROTATE_WINDOW_DAYS``
    rotate when the certificate expires within this many days (default 30).
``PASSGENI_OPERATOR_CHECK_INTERVAL``
    seconds between expiry checks of the managed Secrets (default 3600).

Kubernetes connection: the same kubeconfig or in-cluster configuration as the
store (a ``@kopf.on.login`` handler), so kopf's watches and the writes reach
the same cluster with the same credentials.

Keeping secrets out of kopf's own records: by default kopf copies the
object's "essence" (all of ``data``, i.e. the passwords) into the
``kopf.zalando.org/last-handled-configuration`` annotation and logs whole
bodies at debug level. This operator stores its state under
``operator.passgeni.ai/`` with a diff base that keeps only the *names* of the
data keys, and redacts object bodies from kopf's debug log lines.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
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
    "PRESET_ANNOTATION",
    "ROTATE_ANNOTATION",
    "STATE_PREFIX",
    "OperatorConfig",
    "register_handlers",
]

log = logging.getLogger("k8s_operator_hooks.operator")

#: kopf's own progress and diff-base annotations (not ``passgeni.ai/``: kopf
#: ignores annotations under its storage prefix, and ours must stay visible).
STATE_PREFIX = "operator.passgeni.ai"
#: The verdict's reasons (passgeni_core.workflows.assess) for which the expiry check
#: requests a rotation: the certificate expires soon or no longer covers the key; so
#: does a certificate whose signature does not verify (status ``invalid``). Drift
#: alone (a value edited by hand) or an unknown certificate is left to a scan.
_ROTATE_REASONS = ("expiring", "expired", "revoked")
_TEMPORARY_DELAY = 15.0
_SLOW_DELAY = 60.0
_T = TypeVar("_T")


@dataclass(frozen=True, kw_only=True)
class OperatorConfig:
    """Operator-wide settings (see the module docstring for the variables)."""

    rotate_window: timedelta = timedelta(days=30)
    check_interval: float = 3600.0

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> OperatorConfig:
        env = os.environ if environ is None else environ

        def number(name: str, default: float) -> float:
            text = (env.get(name) or "").strip()
            if not text:
                return default
            try:
                value = float(text)
            except ValueError:
                raise ValueError(f"{name} must be a number, not {text[:20]!r}") from None
            if value < 0:
                raise ValueError(f"{name} must be zero or more")
            return value

        return cls(
            rotate_window=timedelta(days=number("PASSGENI_OPERATOR_ROTATE_WINDOW_DAYS", 30.0)),
            check_interval=max(0.1, number("PASSGENI_OPERATOR_CHECK_INTERVAL", cls.check_interval)),
        )


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
        #: (namespace, name) of the Secrets with ``passgeni.ai/preset``, as kopf watches them.
        self.managed: set[tuple[str, str]] = set()

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


def _expiry_loop(runtime: _Runtime, stop: threading.Event) -> None:
    """Every ``check_interval``: request rotation (``passgeni.ai/rotate: KEYS``) of expiring keys.

    One loop per operator, not a kopf timer: kopf puts a finalizer on every
    object a timer or daemon serves, which would block deleting users'
    Secrets whenever the operator is not running. The rotation itself is done
    by the change handler, with its retries and events.
    """
    while not stop.wait(runtime.config.check_interval):
        for namespace, name in sorted(runtime.managed):
            if stop.is_set():
                return
            try:
                due = _due_for_rotation(runtime, namespace, name, datetime.now(UTC))
                if due:
                    log.info(
                        "%s/%s: certificate(s) of %s expire within %g days; requesting rotation",
                        namespace,
                        name,
                        ", ".join(due),
                        runtime.config.rotate_window.total_seconds() / 86400,
                    )
                    runtime.store.merge_annotations(
                        namespace, name, {ROTATE_ANNOTATION: ",".join(due)}
                    )
            except PassgeniError as exc:
                log.warning("%s/%s: expiry check failed: %s", namespace, name, exc.message)
            except Exception as exc:  # keep checking the others
                log.warning("%s/%s: expiry check failed: %s", namespace, name, type(exc).__name__)


def register_handlers(
    registry: kopf.OperatorRegistry | None = None,
    config: OperatorConfig | None = None,
) -> kopf.OperatorRegistry:
    """Register the operator's handlers on ``registry`` (default: kopf's default registry).

    ``config`` defaults to :meth:`OperatorConfig.from_environ`. Returns the registry.
    """
    registry = registry if registry is not None else kopf.get_default_registry()
    config = config if config is not None else OperatorConfig.from_environ()
    runtime = _Runtime(config)
    managed: dict[str, Any] = {"annotations": {PRESET_ANNOTATION: kopf.PRESENT}}
    stop = threading.Event()
    threads: list[threading.Thread] = []

    @kopf.on.startup(registry=registry, id="passgeni-startup")
    def startup(settings: kopf.OperatorSettings, **_: Any) -> None:
        settings.persistence.diffbase_storage = _KeysOnlyDiffBase(
            prefix=STATE_PREFIX, key="last-handled-configuration"
        )
        settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=STATE_PREFIX)
        logging.getLogger("kopf.objects").addFilter(_redactor)
        runtime.start()
        stop.clear()
        thread = threading.Thread(
            target=_expiry_loop, args=(runtime, stop), name="passgeni-expiry", daemon=True
        )
        thread.start()
        threads.append(thread)

    @kopf.on.cleanup(registry=registry, id="passgeni-cleanup")
    def cleanup(**_: Any) -> None:
        stop.set()
        while threads:
            threads.pop().join(timeout=30)
        runtime.stop()

    @kopf.on.login(registry=registry, id="passgeni-login")
    def login(**_: Any) -> kopf.ConnectionInfo:
        try:
            configuration = load_configuration()
        except PassgeniError as exc:
            raise kopf.LoginError(exc.message) from None
        return kopf.ConnectionInfo(**connection_info(configuration))

    @kopf.on.event("v1", "secrets", registry=registry, id="passgeni-track", **managed)
    def track(event: Mapping[str, Any], body: kopf.Body, **_: Any) -> None:
        ref = (str(body.metadata.namespace or ""), str(body.metadata.name or ""))
        if event.get("type") == "DELETED":
            runtime.managed.discard(ref)
        else:
            runtime.managed.add(ref)

    def reconcile(body: kopf.Body, logger: Any, **_: Any) -> None:
        _guard(body, lambda: _reconcile(runtime, body, logger))

    for decorator in (kopf.on.resume, kopf.on.create, kopf.on.update):
        decorator("v1", "secrets", registry=registry, id="passgeni-reconcile", **managed)(reconcile)
    return registry


# ``kopf run -m k8s_operator_hooks.operator``: the handlers go to kopf's default registry.
register_handlers()
