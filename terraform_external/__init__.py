"""``passgeni-terraform-external``: a program for Terraform's ``external`` data source.

Protocol (exactly what the ``external`` provider expects):

* stdin: one JSON object whose values are all strings (the ``query``);
* stdout: one flat JSON object whose values are all strings, printed once at
  the very end (nothing else ever reaches stdout, not even a library's stray
  print);
* an error: one line on stderr (``passgeni-terraform-external: error [CODE]:
  MESSAGE``), exit status 1, nothing on stdout, never a traceback.

Query keys (all optional but ``preset``): ``preset``; ``length``,
``upper``/``lower``/``digits``/``special`` (``"true"``/``"false"``),
``min_upper``/``min_lower``/``min_digits``/``min_special``, ``special_chars``,
``exclude``, ``exclude_lookalikes``; ``destination`` (a store URI:
``vault://MOUNT/PATH#KEY``, ``aws-sm://NAME#KEY``, ``k8s://NAMESPACE/NAME#KEY``);
``keeper`` (a rotation epoch of your choosing); ``mode``; ``label``;
``authority_url`` and ``timeout`` (else ``PASSGENI_URL``/``PASSGENI_TIMEOUT``/
the config file; with no authority anywhere the program fails with
``authority_not_configured`` before touching a store; ``authority_url =
"embedded"`` runs a throwaway one in-process, whose certificates say so). The
API key comes only from ``PASSGENI_API_KEY`` (or the config file): a query
value would be written to the Terraform state. Stores are configured the
usual way (``VAULT_ADDR``/``VAULT_TOKEN``, the AWS SDK chain, kubeconfig);
``store_options`` (a JSON object of strings, ``jsonencode({ kms_key_id =
"alias/app" })``) passes the destination backend's options as the CLI's
``--store-option`` does (``aws-sm``: ``kms_key_id`` for a secret it creates,
``region_name``, ``endpoint_url``, ``profile_name``).

Modes. Terraform reads data sources during ``plan``, so only the default
writes nothing:

* ``read`` (the default, needs a ``destination``): reads the stored
  credential and asks the one judge (``passgeni_core.workflows.assess``, with
  ``preset`` and ``keeper``); ``status`` says what it found (``valid``,
  ``expiring``, ``no_certificate``, ``drifted``, ``revoked``, ``expired``,
  ``below_requirement`` for another preset or keeper, ``invalid``) and
  ``detail`` why. Nothing is generated, certified or stored.
* ``ensure`` (asked for explicitly): makes sure the destination holds a
  certified credential for ``keeper``, generating, certifying and storing one
  when it does not, **also during a plan** (a speculative plan with a new
  keeper rotates). The ``passgeni/passgeni`` provider's
  ``passgeni_credential`` resource does this at apply only: prefer it.
* ``return`` (asked for explicitly): as ``ensure`` with a destination, else a
  new password and certificate on every run; adds ``password`` and ``seed`` to
  the result, so they land in the state (mark outputs ``sensitive``).

The old ``mode = "store"`` is refused with a pointer to ``ensure``.

Result (references only, never a secret, except ``return`` mode):
``cert_id``, ``cert_url``, ``compliance_standard``, ``standards_met``
(comma-separated), ``entropy_bits``, ``expires_at``, ``destination``,
``version``, ``keeper``, ``mode``, ``status``; ``read`` adds ``detail``.

Idempotency of ``ensure``: a stored credential already certified (valid,
bound, same preset, same ``keeper``, as the one judge finds it, signature
verified) is left alone and the same result printed; a new ``keeper`` rotates.

Start-up: only the query parser is imported before the input is validated;
the authority client, the store backends and their SDKs are imported after.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from typing import IO

__all__ = ["PROG", "main", "run"]

PROG = "passgeni-terraform-external"


def _fail(stderr: IO[str], code: str, message: str) -> int:
    line = " ".join(message.split())
    try:
        stderr.write(f"{PROG}: error [{code}]: {line}\n")
        stderr.flush()
    except (OSError, ValueError):
        pass
    return 1


def _read_stdin(stdin: IO[bytes] | IO[str]) -> bytes:
    from ._query import MAX_STDIN

    data = stdin.read(MAX_STDIN + 1)
    return data.encode("utf-8", "surrogateescape") if isinstance(data, str) else data


def run(raw: bytes, environ: Mapping[str, str]) -> dict[str, str]:
    """Validate ``raw`` (stdin bytes), do the work, return the result map.

    Raises:
        PassgeniError (and subclasses): bad input or a failing service.
    """
    from ._query import decode_stdin, parse_query

    query = parse_query(decode_stdin(raw))
    if environ.get("PASSGENI_TF_VALIDATE_ONLY") == "1":
        # Benchmarks and CI: stop after validation (nothing contacted; prints {}).
        return {}
    from ._work import execute

    return execute(query, environ)


def main(
    argv: Sequence[str] | None = None,
    *,
    stdin: IO[bytes] | IO[str] | None = None,
    stdout: IO[str] | None = None,
    stderr: IO[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> int:
    """Run the program; returns the exit status (the console script exits with it)."""
    args = list(sys.argv[1:] if argv is None else argv)
    out = stdout if stdout is not None else sys.stdout
    err = stderr if stderr is not None else sys.stderr
    if args:
        if args in (["--help"], ["-h"]):
            out.write((__doc__ or "") + "\n")
            return 0
        return _fail(err, "usage", "takes no arguments: the query comes on stdin as JSON")
    source = stdin if stdin is not None else sys.stdin.buffer
    env = os.environ if environ is None else environ
    # Whatever a library prints while we work goes to stderr: stdout carries one JSON object.
    real_stdout, sys.stdout = sys.stdout, sys.stderr
    try:
        result = run(_read_stdin(source), env)
        import json

        payload = json.dumps(result, sort_keys=True, ensure_ascii=True)
    except KeyboardInterrupt:
        return _fail(err, "interrupted", "interrupted")
    except Exception as exc:
        return _fail(err, *_describe(exc))
    finally:
        sys.stdout = real_stdout
    try:
        out.write(payload + "\n")
        out.flush()
    except (BrokenPipeError, OSError, ValueError):
        return 1
    return 0


def _describe(exc: BaseException) -> tuple[str, str]:
    from passgeni_core import PassgeniError

    if isinstance(exc, PassgeniError):
        return exc.code, exc.message
    # Not ours: name the type only (a library's message could echo a value).
    return "internal_error", f"unexpected {type(exc).__name__}; please report it"
