"""The authority's browser generator: ``/generate`` and ``/generate/certified``.

Both pages run the core's generator in the browser (``static/generator.js``, a line-by-line
port of ``passgeni_core/model/_generator.py``, ``_entropy.py`` and ``_derive.py``, with
SHAKE-256 in ``static/shake256.js``); nothing is loaded from elsewhere, so they work
air-gapped. What the page needs from the core is handed over as data, computed here from
its public API: the preset table and the breach list.

* ``/generate`` is zero-knowledge: its Content-Security-Policy has ``connect-src 'none'``,
  so the browser itself forbids the page any request once loaded.
* ``/generate/certified`` runs the CLI's commit-reveal protocol from the browser
  (``connect-src 'self'``: only this authority's ``/api/generate`` and
  ``/api/generate-certificate``, with the API key the user types).
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape

from passgeni_core import NotFound
from passgeni_core.model import (
    LOOKALIKES,
    MAPPING_VERSION,
    GenerationParameters,
    breach_list,
    list_presets,
)

__all__ = ["STATIC_FILES", "add_generator_routes", "generator_table", "page_headers"]

#: The scripts served under ``/assets/`` (an allow-list: no path from the request is opened).
STATIC_FILES = frozenset({"shake256.js", "generator.js", "generate-page.js"})

_ASCII_PRINTABLE = frozenset(chr(c) for c in range(0x21, 0x7F))


def page_headers(*, connect: str) -> dict[str, str]:
    """The headers of a browser page: scripts from this origin only, requests as ``connect``."""
    return {
        "Cache-Control": "no-store",
        "Content-Security-Policy": (
            "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; "
            f"img-src 'self' data:; connect-src {connect}; form-action 'self'; "
            "base-uri 'none'; frame-ancestors 'none'"
        ),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "X-Frame-Options": "DENY",
    }


@cache
def generator_table() -> dict[str, Any]:
    """What the browser generator knows of the core: pool, look-alikes, presets."""
    default_pool = GenerationParameters(length=4).pool().classes
    presets = []
    for p in list_presets():
        presets.append(
            {
                "id": p.id,
                "claim_id": p.claim_id,
                "standard": p.standard,
                "min_length": p.min_length,
                "default_length": p.default_length,
                "required_classes": list(p.required_classes),
                "min_classes_present": p.min_classes_present,
                "min_entropy_bits": p.min_entropy_bits,
                "entropy_floor": {"bits": p.entropy_floor.bits},
                "min_pool": {
                    **{n: p.min_pool.of(n) for n in ("upper", "lower", "digits", "special")},
                    "total": p.min_pool.total,
                },
                "breach_check": p.breach_check,
                "requires_fips_entropy": p.requires_fips_entropy,
            }
        )
    return {
        "mapping_version": MAPPING_VERSION,
        "default_pool": dict(default_pool),
        "lookalikes": LOOKALIKES,
        "presets": presets,
    }


@cache
def breach_script() -> bytes:
    """The breach list as a script (only the words a generator could ever emit: printable ASCII)."""
    listed = breach_list()
    words = sorted(w for w in listed.words() if w and set(w) <= _ASCII_PRINTABLE)
    body = json.dumps(words, separators=(",", ":"), ensure_ascii=True)
    header = f"/* {listed.name} {listed.version}: {len(words)} entries (printable ASCII) */\n"
    return (
        header + f"window.PassGeni = window.PassGeni || {{}};\nPassGeni.breachWords = {body};\n"
    ).encode()


@cache
def _static(name: str) -> bytes:
    return resources.files("passgeni_authority").joinpath("static", name).read_bytes()


def root_of(request: Request) -> str:
    """The path the app is mounted under (``""`` at the origin's root)."""
    return str(request.scope.get("root_path", "")).rstrip("/")


def add_generator_routes(app: FastAPI) -> None:
    """``GET /generate``, ``GET /generate/certified`` and the scripts under ``/assets/``."""
    env = Environment(
        loader=PackageLoader("passgeni_authority", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
    )

    def render(request: Request, *, certified: bool) -> HTMLResponse:
        html = env.get_template("generate.html").render(
            certified=certified,
            root=root_of(request),
            table=generator_table(),
            presets=generator_table()["presets"],
            default_preset="soc2",
        )
        return HTMLResponse(html, headers=page_headers(connect="'self'" if certified else "'none'"))

    @app.get("/generate", tags=["pages"], include_in_schema=False)
    def generate_page(request: Request) -> HTMLResponse:
        return render(request, certified=False)

    @app.get("/generate/certified", tags=["pages"], include_in_schema=False)
    def generate_certified_page(request: Request) -> HTMLResponse:
        return render(request, certified=True)

    @app.get("/assets/{name}", tags=["pages"], include_in_schema=False)
    def asset(name: str) -> Response:
        if name == "breach-list.js":
            body = breach_script()
        elif name in STATIC_FILES:
            body = _static(name)
        else:
            raise NotFound("no such asset")
        return Response(
            body,
            media_type="text/javascript; charset=utf-8",
            headers={"Cache-Control": "max-age=3600", "X-Content-Type-Options": "nosniff"},
        )
