"""Local commands: ``presets``, ``generate`` (zero-knowledge); ``verify`` is parsed here, run by ``_remote``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from .._errors import InvalidRequest
from ..crypto import Certificate
from ..model import (
    MAPPING_VERSION,
    GenerationParameters,
    detect_entropy_source,
    generate,
    get_preset,
    list_presets,
)
from ._output import print_json, print_table

__all__ = ["add_parameter_options", "parameters_from_args", "register"]


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


def _cmd_presets(args: argparse.Namespace) -> int:
    presets = list_presets()
    if args.json:
        print_json({"mapping_version": MAPPING_VERSION, "presets": [p.to_dict() for p in presets]})
        return 0
    print_table(
        ["PRESET", "STANDARD", "REQUIRES", "DEFAULT LENGTH"],
        [(p.id, p.standard, p.describe(), p.default_length) for p in presets],
    )
    print(
        f"\nmapping version {MAPPING_VERSION}; `passgeni presets --json` shows citations and notes"
    )
    return 0


def _cmd_generate(args: argparse.Namespace) -> int:
    params = parameters_from_args(args)
    preset = get_preset(args.preset)
    result = generate(params, entropy_source=detect_entropy_source())
    if args.json:
        print_json({"password": result.password, "preset": preset.id, **result.public_dict()})
        return 0
    # The password alone on stdout, so `PW=$(passgeni generate ...)` works;
    # the facts about it go to stderr.
    print(result.password)
    print(
        f"preset {preset.id}: {result.entropy.bits} bits exact entropy "
        f"(naive {result.entropy.naive_bits}); meets {', '.join(result.standards_met)}",
        file=sys.stderr,
    )
    return 0


def _read_token(value: str) -> str:
    if value == "-":
        return sys.stdin.read().strip()
    if value.startswith("@"):
        try:
            return Path(value[1:]).read_text().strip()
        except OSError as exc:
            raise InvalidRequest(f"cannot read token file {value[1:]!r}: {exc.strerror}") from None
    return value.strip()


def certificate_summary(cert: Certificate) -> dict[str, Any]:
    claims = cert.claims
    return {
        "valid": True,
        "historical": cert.historical,
        "verified_as_of": cert.verified_as_of.isoformat(),
        "cert_id": claims.jti,
        "kid": cert.kid,
        "issuer": claims.iss,
        "subject": claims.sub,
        "compliance_standard": claims.compliance_standard,
        "standards_met": list(claims.standards_met),
        "entropy_bits": claims.entropy_bits,
        "issued_at": claims.issued_at.isoformat(),
        "expires_at": claims.expires_at.isoformat(),
        "parameters": claims.parameters,
        "entropy_source": claims.entropy_source,
        "credential_commitment": claims.credential_commitment,
        "target": claims.target.to_dict() if claims.target else None,
        "label": claims.label,
    }


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("presets", help="list the compliance presets and what they require")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(handler=_cmd_presets)

    p = sub.add_parser(
        "generate",
        help="generate a password locally (zero-knowledge: no server, nothing sent)",
    )
    add_parameter_options(p)
    p.add_argument(
        "--json", action="store_true", help="machine-readable output (includes the password)"
    )
    p.set_defaults(handler=_cmd_generate)

    p = sub.add_parser(
        "verify",
        help="verify a certificate: offline by JWKS; by URL or id from the authority",
        description=(
            "TOKEN with --jwks FILE: fully offline. TOKEN alone: the JWKS is fetched from the "
            "authority. CERT_URL or CERT_ID: the record and JWKS are fetched from the authority "
            "and a revoked certificate fails. --online adds the revocation status to a TOKEN."
        ),
    )
    # Imported here: _remote imports this module for the shared options.
    from ._remote import register_verify_options

    register_verify_options(p)
