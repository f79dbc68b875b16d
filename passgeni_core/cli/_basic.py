"""Local commands: ``presets``, ``generate`` (zero-knowledge)."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from ..model import (
    MAPPING_VERSION,
    detect_entropy_source,
    generate,
    get_preset,
    list_presets,
)
from ._options import add_parameter_options, parameters_from_args
from ._output import print_json, print_table

if TYPE_CHECKING:
    from ..crypto import Certificate

__all__ = ["certificate_summary", "register"]


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


def certificate_summary(cert: Certificate) -> dict[str, Any]:
    claims = cert.claims
    return {
        "valid": True,
        "historical": cert.historical,
        "verified_as_of": cert.verified_as_of.isoformat(),
        "cert_id": claims.jti,
        "kid": cert.kid,
        "issuer": claims.iss,
        "embedded_issuer": claims.embedded_issuer,
        "subject": claims.sub,
        "compliance_standard": claims.compliance_standard,
        "standards_met": list(claims.standards_met),
        "entropy_bits": claims.entropy_bits,
        "issued_at": claims.issued_at.isoformat(),
        "expires_at": claims.expires_at.isoformat(),
        "parameters": claims.parameters,
        # Declared by the client; ``provenance``: what the authority observed, the FIPS rule.
        "entropy_source": claims.entropy_source,
        "provenance": claims.provenance.to_dict() if claims.provenance else None,
        "fips_problem": claims.fips_problem() or None,
        "credential_commitment": claims.credential_commitment,
        "generation": claims.generation.to_dict() if claims.generation else None,
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
