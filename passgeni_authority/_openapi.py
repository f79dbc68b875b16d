"""The OpenAPI description of the bodies, generated from the wire contract.

The app reads JSON bodies with :func:`~passgeni_authority._issuance_http.parse_json_object`
(strict rules, the core's messages) and writes its answers from the wire
Structs of ``passgeni_core.client``, not from pydantic models, so FastAPI
cannot derive their schemas: they come from the Structs
(``msgspec.json.schema_components``) and are placed here. The issuance
endpoints are plain ASGI routes, which FastAPI does not describe at all:
:func:`issuance_operations` is their whole path item.

Each documented body schema is the Struct's component schema itself (nested
bodies are ``$ref`` s into ``components/schemas``), so a test can check the
served document against the Structs.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from msgspec import Struct

from passgeni_core.client import (
    AuditPageBody,
    CertificateRecordBody,
    GenerateBatchBody,
    GenerateBody,
    GenerationBatchBody,
    GenerationSessionBody,
    HealthBody,
    IssueBatchBody,
    IssueBody,
    IssuedBatchBody,
    IssuedCertificateBody,
    JwksBody,
    LookupAnswerBody,
    LookupBody,
    ManifestBody,
    ManifestSignatureBody,
    RevokeBody,
    ScanReceiptBody,
    ScanSubmissionBody,
    SigningKeysBody,
    StatusListsBody,
    openapi_components,
)

__all__ = [
    "BODIES",
    "ISSUANCE_PATHS",
    "components",
    "document_bodies",
    "issuance_operations",
    "request_body",
    "responses",
]


@cache
def components() -> dict[str, Any]:
    """Every wire body's schema, by Struct name (``components/schemas``)."""
    return openapi_components()


def _schema(body: type[Struct]) -> dict[str, Any]:
    return dict(components()[body.__name__])


def request_body(body: type[Struct]) -> dict[str, Any]:
    """An operation's ``requestBody`` (for ``openapi_extra``)."""
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": _schema(body)}},
        }
    }


def responses(status: int, body: type[Struct]) -> dict[int | str, dict[str, Any]]:
    """An operation's successful answer (FastAPI's ``responses``). Errors are
    ``ErrorBody`` on every operation (see ``components/schemas``)."""
    return {
        status: {
            "description": "Successful Response",
            "content": {"application/json": {"schema": _schema(body)}},
        }
    }


#: (request body, status, answer body) of every operation whose bodies the
#: app handles itself, by ``(method, path)``: what the OpenAPI document says.
BODIES: dict[tuple[str, str], tuple[type[Struct] | None, int, type[Struct]]] = {
    ("post", "/api/generate"): (GenerateBody, 200, GenerationSessionBody),
    ("post", "/api/generate-batch"): (GenerateBatchBody, 200, GenerationBatchBody),
    ("post", "/api/generate-certificate"): (IssueBody, 201, IssuedCertificateBody),
    ("post", "/api/generate-certificates"): (IssueBatchBody, 201, IssuedBatchBody),
    ("get", "/api/audit"): (None, 200, AuditPageBody),
    ("post", "/api/certificates/{cert_id}/revoke"): (RevokeBody, 200, CertificateRecordBody),
    ("get", "/api/certificates/{cert_id}"): (None, 200, CertificateRecordBody),
    ("post", "/api/certificates/lookup"): (LookupBody, 200, LookupAnswerBody),
    ("get", "/.well-known/jwks.json"): (None, 200, JwksBody),
    ("get", "/api/signing-keys"): (None, 200, SigningKeysBody),
    ("get", "/status"): (None, 200, StatusListsBody),
    ("post", "/api/evidence/sign-manifest"): (ManifestBody, 200, ManifestSignatureBody),
    ("get", "/healthz"): (None, 200, HealthBody),
    ("post", "/api/scans"): (ScanSubmissionBody, 201, ScanReceiptBody),
}


def document_bodies(document: dict[str, Any]) -> None:
    """Put the wire bodies into FastAPI's document (in place): each of
    :data:`BODIES`' operations gets its Struct schemas, and every Struct is a
    component (the ``$ref`` s of nested bodies point there).

    Done on the finished document, not through the routes' ``responses``:
    FastAPI passes those through its own models, which drop ``null`` defaults.
    """
    paths = document["paths"]
    for (method, path), (request, status, answer) in BODIES.items():
        operation = paths[path][method]
        if request is not None:
            operation.update(request_body(request))
        operation.setdefault("responses", {}).update(
            {str(code): item for code, item in responses(status, answer).items()}
        )
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas.update(components())


def _operation(operation_id: str, summary: str, description: str) -> dict[str, Any]:
    # Its bodies are added with every other operation's (document_bodies).
    return {
        "post": {
            "tags": ["certificates"],
            "summary": summary,
            "description": description,
            # The ids FastAPI gave these operations when they were its routes.
            "operationId": operation_id,
        }
    }


def issuance_operations() -> dict[str, dict[str, Any]]:
    """The issuance endpoints' path items, by path."""
    return {
        "/api/generate": _operation(
            "generate_route_api_generate_post",
            "Open a generation session",
            "Re-validate generation parameters and open a 60 s single-use session.",
        ),
        "/api/generate-batch": _operation(
            "generate_batch_route_api_generate_batch_post",
            "Open generation sessions in a batch",
            "``count`` sessions with the same parameters (validated once), for batch issuance."
            "\n\nEach session counts as one generation attempt towards the per-IP limit.",
        ),
        "/api/generate-certificate": _operation(
            "generate_certificate_route_api_generate_certificate_post",
            "Redeem a generation session",
            "Redeem a generation session for a signed certificate.",
        ),
        "/api/generate-certificates": _operation(
            "generate_certificates_route_api_generate_certificates_post",
            "Redeem generation sessions in a batch",
            "Batch issuance: many sessions, many certificates, one request.",
        ),
    }


#: The issuance endpoints' paths (``create_app`` makes their routes before any schema).
ISSUANCE_PATHS: tuple[str, ...] = (
    "/api/generate",
    "/api/generate-batch",
    "/api/generate-certificate",
    "/api/generate-certificates",
)
