"""Options and readers several commands share (so no command module imports another)."""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._errors import InvalidRequest, MalformedToken
from ..model import GenerationParameters

if TYPE_CHECKING:
    from ..client import ClientConfig
    from ..crypto import JWKS, Certificate, StatusList

# The client and crypto names are imported where they are used: every command
# imports this module, and `presets` or `generate` must not load requests, pyjwt
# or cryptography (tests/unit/passgeni_core/test_cli_imports.py).

__all__ = [
    "add_connection_options",
    "add_parameter_options",
    "authority_config",
    "check_status_list_file",
    "parameters_from_args",
    "read_file",
    "read_status_list_file",
    "read_token",
]


def add_parameter_options(parser: argparse.ArgumentParser) -> None:
    """The generation options shared by ``generate``, ``provision`` and friends."""
    parser.add_argument(
        "--preset", required=True, help="compliance preset id (see `passgeni presets`)"
    )
    parser.add_argument("--length", type=int, help="password length (default: the preset's)")
    parser.add_argument(
        "--exclude", default="", metavar="CHARS", help="characters never to use, e.g. '@/\"\\:'"
    )
    parser.add_argument("--special-chars", metavar="CHARS", help="replace the 32 default specials")
    parser.add_argument(
        "--exclude-lookalikes", action="store_true", help="drop look-alike characters (Il1O0...)"
    )
    for name in ("upper", "lower", "digits", "special"):
        parser.add_argument(
            f"--no-{name}",
            dest=f"no_{name}",
            action="store_true",
            help=f"disable {name} characters",
        )
        parser.add_argument(
            f"--min-{name}", type=int, metavar="N", help=f"at least N {name} characters"
        )


def parameters_from_args(args: argparse.Namespace) -> GenerationParameters:
    """Build parameters for ``args.preset`` from the shared options.

    Raises:
        UnknownPreset, PresetNotMet, InvalidParameters: as GenerationParameters.for_preset.
    """
    toggles: dict[str, Any] = {}
    for name in ("upper", "lower", "digits", "special"):
        if getattr(args, f"no_{name}"):
            toggles[name] = False
        minimum = getattr(args, f"min_{name}")
        if minimum is not None:
            toggles[f"min_{name}"] = minimum
    return GenerationParameters.for_preset(
        args.preset,
        length=args.length,
        exclude=args.exclude,
        special_chars=args.special_chars,
        exclude_lookalikes=args.exclude_lookalikes,
        **toggles,
    )


def add_connection_options(parser: argparse.ArgumentParser) -> None:
    """``--url``, ``--api-key``, ``--timeout``, ``--embedded``: override environment and config."""
    group = parser.add_argument_group("authority")
    group.add_argument(
        "--url",
        metavar="URL",
        help="authority base URL (default: $PASSGENI_URL, then url in the config file; "
        "no default authority: without one the command refuses)",
    )
    group.add_argument(
        "--api-key",
        metavar="KEY",
        help="API key (default: $PASSGENI_API_KEY or config; prefer those: flags show in `ps`)",
    )
    group.add_argument(
        "--timeout", type=float, metavar="SECONDS", help="per-request timeout (default 10)"
    )
    group.add_argument(
        "--embedded",
        action="store_true",
        help="run a throwaway authority in this process (needs passgeni[authority]; same as "
        "PASSGENI_URL=embedded): its certificates say so and are no evidence for an auditor",
    )


def authority_config(args: argparse.Namespace) -> ClientConfig:
    """The authority configuration of a command with :func:`add_connection_options`.

    Not checked here (offline verification reads only its issuer): callers that
    need the authority call ``.require_authority()`` before anything else, or
    let ``connect`` refuse.

    Raises:
        InvalidRequest: a bad config file or timeout, or ``--url`` with ``--embedded``.
    """
    from ..client import resolve_config

    return resolve_config(
        url=getattr(args, "url", None),
        api_key=getattr(args, "api_key", None),
        timeout=getattr(args, "timeout", None),
        issuer=getattr(args, "issuer", None),
        embedded=bool(getattr(args, "embedded", False)),
    )


#: A compact JWS: three base64url segments (the signature may not be empty
#: for ES256, but that is the verifier's to say, with its own error).
_COMPACT_JWS = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")


def looks_like_token(value: str) -> bool:
    """Whether ``value`` has the form of a compact JWS (else: an id or a URL)."""
    return _COMPACT_JWS.fullmatch(value) is not None


#: A token is about 1 KB; a file or stdin of more is not one.
MAX_TOKEN_INPUT = 64 * 1024


def read_token(value: str) -> str:
    """A token given as text, ``@FILE`` or ``-`` (stdin). A token is ASCII: anything else,
    or input over :data:`MAX_TOKEN_INPUT`, is refused here in one line."""
    if value == "-":
        raw = sys.stdin.buffer.read(MAX_TOKEN_INPUT + 1)
        where = "stdin"
    elif value.startswith("@"):
        raw = read_file(value[1:], "token file")
        where = f"token file {value[1:]!r}"
    else:
        return value.strip()
    if len(raw) > MAX_TOKEN_INPUT:
        raise InvalidRequest(f"{where} holds more than {MAX_TOKEN_INPUT} bytes: not a token")
    try:
        return raw.decode("ascii").strip()
    except UnicodeDecodeError:
        raise MalformedToken(f"{where} is not a token (a token is ASCII text)") from None


def read_file(path: str, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise InvalidRequest(f"cannot read {what} {path!r}: {exc.strerror}") from None


def jwks_from_file(path: str) -> JWKS:
    """The keys saved in a JWKS file (``/.well-known/jwks.json``), never fetched."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise InvalidRequest(f"cannot read JWKS file {path!r}: {exc.strerror}") from None
    from ..crypto import JWKS

    return JWKS.from_dict(data)  # size, UTF-8 and nesting checked there


def read_status_list_file(path: str) -> list[str]:
    """The JWTs in a status-list file (one per line; blank lines and ``#`` comments skipped)."""
    text = read_file(path, "status list file").decode("ascii", "replace")
    tokens = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    if not tokens:
        raise InvalidRequest(f"status list file {path!r} holds no status list")
    return tokens


def check_status_list_file(path: str, cert: Certificate, jwks: JWKS, issuer: str) -> StatusList:
    """Check ``cert`` against the cached list it points at, offline.

    Raises:
        InvalidRequest: the certificate has no status reference, or the file has
            no list for its URI.
        CertificateRevoked: the list marks it revoked (exit 1, ``certificate_revoked``).
        CertificateExpired / BadSignature / ...: the list itself does not verify
            (or is past its ``exp``: fetch a fresh one).
    """
    from ..crypto import check_revocation, unverified_payload, verify_status_list

    ref = cert.claims.status
    if ref is None:
        raise InvalidRequest(
            f"certificate {cert.cert_id} carries no status list reference (issued before "
            "status lists); check it online with --online"
        )
    for token in read_status_list_file(path):
        try:
            sub = unverified_payload(token).get("sub")
        except MalformedToken:
            continue
        if sub == ref.uri:
            lst = verify_status_list(token, jwks, issuer=issuer, uri=ref.uri)
            check_revocation(cert, lst)
            return lst
    raise InvalidRequest(
        f"{path!r} has no status list {ref.uri!r}; refresh it with `passgeni status-list fetch`"
    )
