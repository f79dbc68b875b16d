"""Hand-written OpenAPI for the bodies the app parses itself.

The app reads JSON bodies with :func:`~passgeni_authority._issuance_http.parse_json_object`
(strict rules, the core's messages), not pydantic models, so FastAPI cannot
derive their schemas; they are written out here. The issuance endpoints are
plain ASGI routes, which FastAPI does not describe at all:
:data:`ISSUANCE_OPERATIONS` is their whole path item.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ISSUANCE_OPERATIONS", "REVOKE_SCHEMA"]

_OBJECT = {"type": "object"}


def _body_schema(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {**schema, "additionalProperties": False}}},
        }
    }


_GENERATE_PROPS: dict[str, Any] = {
    "compliance_standard": {"type": "string"},
    "preset": {"type": "string"},
    "parameters": _OBJECT,
    "entropy_source": _OBJECT,
}
_REDEEM_PROPS = {
    "generation_session_id": {"type": "string"},
    "credential_commitment": {"type": "string", "pattern": "^[A-Za-z0-9_-]{43}$"},
    "target": {
        "type": "object",
        "properties": {
            "system": {"type": "string"},
            "path": {"type": "string"},
            "version": {"type": "string"},
        },
    },
    "label": {"type": "string", "maxLength": 200},
}

#: ``openapi_extra`` of ``POST /api/certificates/{cert_id}/revoke``.
REVOKE_SCHEMA = _body_schema(
    {"reason": {"type": "string", "minLength": 1, "maxLength": 500}}, ["reason"]
)


def _operation(
    operation_id: str, summary: str, description: str, status: int, body: dict[str, Any]
) -> dict[str, Any]:
    return {
        "post": {
            "tags": ["certificates"],
            "summary": summary,
            "description": description,
            # The ids FastAPI gave these operations when they were its routes.
            "operationId": operation_id,
            **body,
            "responses": {
                str(status): {
                    "description": "Successful Response",
                    "content": {"application/json": {"schema": {}}},
                }
            },
        }
    }


#: The issuance endpoints' path items, by path.
ISSUANCE_OPERATIONS: dict[str, dict[str, Any]] = {
    "/api/generate": _operation(
        "generate_route_api_generate_post",
        "Open a generation session",
        "Re-validate generation parameters and open a 60 s single-use session.",
        200,
        _body_schema(_GENERATE_PROPS),
    ),
    "/api/generate-batch": _operation(
        "generate_batch_route_api_generate_batch_post",
        "Open generation sessions in a batch",
        "``count`` sessions with the same parameters (validated once), for batch issuance.\n\n"
        "Each session counts as one generation attempt towards the per-IP limit.",
        200,
        _body_schema(
            {**_GENERATE_PROPS, "count": {"type": "integer", "minimum": 1, "maximum": 1000}},
            ["count"],
        ),
    ),
    "/api/generate-certificate": _operation(
        "generate_certificate_route_api_generate_certificate_post",
        "Redeem a generation session",
        "Redeem a generation session for a signed certificate.",
        201,
        _body_schema(_REDEEM_PROPS, ["generation_session_id"]),
    ),
    "/api/generate-certificates": _operation(
        "generate_certificates_route_api_generate_certificates_post",
        "Redeem generation sessions in a batch",
        "Batch issuance: many sessions, many certificates, one request.",
        201,
        _body_schema(
            {
                "items": {
                    "type": "array",
                    "maxItems": 1000,
                    "items": {"type": "object", "properties": _REDEEM_PROPS},
                }
            },
            ["items"],
        ),
    ),
}
