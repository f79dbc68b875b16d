"""``passgeni/passgeni``: a Terraform provider (pyvider, plugin protocol 6) for certified credentials.

Components (``register_components`` puts them in pyvider's hub; the
``pyvider`` entry point names this package):

* ``resource "passgeni_credential"`` (:mod:`._credential`): generate, certify
  and store at apply; refresh and plan only read and judge;
* ``ephemeral "passgeni_credential"`` (:mod:`._ephemeral`): the stored
  password for write-only attributes, never in state or plan files;
* ``data "passgeni_certificate"`` (:mod:`._certificate`): a verified
  certificate, by id or destination.

``terraform-provider-passgeni`` (:func:`main`) is the plugin executable
Terraform starts; ``passgeni terraform install-provider`` lays it out in a
filesystem mirror, ``passgeni terraform serve-provider`` keeps one running for
every command (see ``examples/terraform/README.md``).
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

__all__ = ["QUIET_DEFAULTS", "main", "register_components"]

#: The foundation library's public settings the plugin starts with (each can be set
#: otherwise in the environment). pyvider's value conversions log at trace level through
#: ``msg()``, which the level filter drops only after the emoji enrichment processors have
#: run: about half of the CPU of every refresh and plan RPC. No telemetry is exported.
QUIET_DEFAULTS = {
    "PROVIDE_LOG_DAS_EMOJI_ENABLED": "false",
    "PROVIDE_LOG_LOGGER_NAME_EMOJI_ENABLED": "false",
    "OTEL_TRACING_ENABLED": "false",
    "OTEL_METRICS_ENABLED": "false",
}


def register_components(hub: Any) -> None:
    """pyvider's fast discovery path: register our components, walk no modules."""
    from ._certificate import CertificateDataSource
    from ._credential import CredentialResource
    from ._ephemeral import CredentialEphemeral
    from ._provider import PROVIDER_NAME, PassgeniConfig, PassgeniProvider

    hub.register("provider", PROVIDER_NAME, PassgeniProvider)
    hub.register("capability", "passgeni_config", PassgeniConfig)
    hub.register("resource", "passgeni_credential", CredentialResource)
    hub.register("ephemeral_resource", "passgeni_credential", CredentialEphemeral)
    hub.register("data_source", "passgeni_certificate", CertificateDataSource)


def _prewarm() -> None:
    with contextlib.suppress(Exception):  # only a head start: the first use imports anyway
        from passgeni_core import AuthorityClient, connect
        from passgeni_core.workflows import assess, ensure_rotated

        del AuthorityClient, connect, assess, ensure_rotated


def main() -> None:
    """The plugin executable: serve the provider to the Terraform that started it.

    Terraform waits for the plugin process to exit after each command phase (a plan
    starts it three times): once the server has stopped, the connections are closed
    and the process ends at once, without the interpreter's slow teardown of grpc.
    """
    import sys

    # Quiet by default: Terraform shows a plugin's stderr only in its own logs. pyvider
    # reads PYVIDER_LOG_LEVEL, its foundation library PROVIDE_LOG_LEVEL: one sets both.
    level = os.environ.get("PYVIDER_LOG_LEVEL") or os.environ.get("PROVIDE_LOG_LEVEL") or "WARNING"
    os.environ.setdefault("PYVIDER_LOG_LEVEL", level)
    os.environ.setdefault("PROVIDE_LOG_LEVEL", level)
    for name, value in QUIET_DEFAULTS.items():
        os.environ.setdefault(name, value)
    if os.environ.get("PASSGENI_PROVIDER_SERVED_BY"):
        # Started by `passgeni terraform run` or `serve-provider`: this process will serve
        # whole commands, and sits idle while Terraform starts. Import what the first
        # refresh needs meanwhile (the authority client, its HTTP and JWT libraries).
        import threading

        threading.Thread(target=_prewarm, name="passgeni-prewarm", daemon=True).start()
    try:
        from pyvider.cli.__main__ import main as serve
    except ImportError:
        sys.stderr.write(
            "terraform-provider-passgeni: error [missing_dependency]: the provider needs "
            "pyvider: pip install 'passgeni[terraform]'\n"
        )
        sys.exit(4)

    code = 0
    try:
        serve()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        from ._runtime import runtime

        runtime().close()
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError):
                stream.flush()
    os._exit(code)
