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
signature verified: the same verdict as ``passgeni scan``), by setting
``passgeni.ai/rotate`` to those keys. The managed Secrets are a kopf index
(``@kopf.index``, kept from kopf's own watch); the check is one task on
kopf's event loop rather than a ``@kopf.timer``, because kopf puts a finalizer
on every object a timer serves, which would block deleting users' Secrets
(and their namespaces) whenever the operator is not running. The operator
adds no finalizers. The liveness endpoint (``--liveness``) reports the number
of managed Secrets (``managed_secrets``).

Failures: an unknown preset, a malformed key list or rotate value posts a
``Warning`` event on the Secret and fails permanently (``kopf.PermanentError``:
no retries until the annotations change); an unreachable authority or API
server, rate limiting or a concurrent writer raise ``kopf.TemporaryError``
(kopf retries with a delay). Successful writes post ``Normal`` events naming
the certificate (never a secret).

Configuration (environment, read when the handlers are registered; flags of
``passgeni operator`` win over it), checked before anything is watched: a
setting that cannot work stops the operator with one line:

``PASSGENI_OPERATOR_ROTATE_WINDOW_DAYS``
    rotate when the certificate expires within this many days (default 30);
    must be shorter than the certificate lifetime (``passgeni_core.CERT_LIFETIME``,
    365 days), else every certificate would be rotated on every check.
``PASSGENI_OPERATOR_CHECK_INTERVAL``
    seconds between expiry checks of the managed Secrets (default 3600).
``PASSGENI_OPERATOR_NAMESPACES``
    ``passgeni operator`` only: the namespaces watched, comma separated (kopf
    patterns allowed), when no ``--namespace`` is given; default every namespace.
    Under ``kopf run`` use its ``--namespace``/``--all-namespaces``.

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

from ._config import InvalidSetting, OperatorConfig
from ._handlers import (
    KEYS_ANNOTATION,
    MANAGED_INDEX,
    PRESET_ANNOTATION,
    ROTATE_ANNOTATION,
    STATE_PREFIX,
    register_handlers,
)

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


def _register_module_handlers() -> None:
    """``kopf run -m k8s_operator_hooks.operator``: the handlers on kopf's default registry.

    A setting that cannot work stops ``kopf run`` here, with one line, before
    anything is watched.
    """
    try:
        register_handlers()
    except InvalidSetting as exc:
        raise SystemExit(f"passgeni operator: error [{exc.code}]: {exc.message}") from None


_register_module_handlers()
