"""The served OpenAPI document describes every body with the wire Struct's own schema.

One wire model (``passgeni_core.client``'s Structs): the client decodes with
it, the authority answers with it, and ``/openapi.json`` is generated from it.
This checks the last part on the document the app serves (no server: the app
builds its document in process).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from passgeni_authority import AuthorityService, AuthoritySettings, RateLimits, create_app
from passgeni_core import client as wire
from tests.support.authority import FakeClock

#: Every operation whose bodies are the wire's: (method, path) -> (request, status, answer).
#: Written out here, not read from the app, so a change on either side shows.
OPERATIONS: dict[tuple[str, str], tuple[type[msgspec.Struct] | None, str, type[msgspec.Struct]]] = {
    ("post", "/api/generate"): (wire.GenerateBody, "200", wire.GenerationSessionBody),
    ("post", "/api/generate-batch"): (wire.GenerateBatchBody, "200", wire.GenerationBatchBody),
    ("post", "/api/generate-certificate"): (wire.IssueBody, "201", wire.IssuedCertificateBody),
    ("post", "/api/generate-certificates"): (wire.IssueBatchBody, "201", wire.IssuedBatchBody),
    ("get", "/api/audit"): (None, "200", wire.AuditPageBody),
    ("post", "/api/certificates/{cert_id}/revoke"): (
        wire.RevokeBody,
        "200",
        wire.CertificateRecordBody,
    ),
    ("get", "/api/certificates/{cert_id}"): (None, "200", wire.CertificateRecordBody),
    ("get", "/.well-known/jwks.json"): (None, "200", wire.JwksBody),
    ("get", "/api/signing-keys"): (None, "200", wire.SigningKeysBody),
    ("get", "/status"): (None, "200", wire.StatusListsBody),
    ("post", "/api/evidence/sign-manifest"): (
        wire.ManifestBody,
        "200",
        wire.ManifestSignatureBody,
    ),
    ("get", "/healthz"): (None, "200", wire.HealthBody),
}


@pytest.fixture(scope="module")
def spec(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    state: Path = tmp_path_factory.mktemp("openapi")
    settings = AuthoritySettings(
        state_dir=state, clock=FakeClock(), rate_limits=RateLimits.unlimited()
    )
    with AuthorityService(settings) as service:
        # Through JSON, as a client reads it.
        yield msgspec.json.decode(msgspec.json.encode(create_app(service=service).openapi()))


def _generated(body: type[msgspec.Struct]) -> dict[str, Any]:
    (_ref,), components = msgspec.json.schema_components(
        [body], ref_template="#/components/schemas/{name}"
    )
    schema: dict[str, Any] = components[body.__name__]
    return schema


def _json_schema(content: dict[str, Any]) -> dict[str, Any]:
    schema: dict[str, Any] = content["content"]["application/json"]["schema"]
    return schema


@pytest.mark.parametrize(("method", "path"), list(OPERATIONS))
def test_each_documented_body_is_the_structs_generated_schema(
    spec: dict[str, Any], method: str, path: str
) -> None:
    request, status, answer = OPERATIONS[(method, path)]
    operation = spec["paths"][path][method]
    if request is None:
        assert "requestBody" not in operation
    else:
        assert operation["requestBody"]["required"] is True
        assert _json_schema(operation["requestBody"]) == _generated(request)
    assert _json_schema(operation["responses"][status]) == _generated(answer)


def test_every_wire_body_is_a_component_and_every_reference_resolves(
    spec: dict[str, Any],
) -> None:
    schemas = spec["components"]["schemas"]
    for body in (*wire.REQUEST_BODIES, *wire.ANSWER_BODIES):
        assert schemas[body.__name__] == _generated(body), body.__name__

    def refs(node: Any) -> Iterator[str]:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "$ref":
                    yield value
                else:
                    yield from refs(value)
        elif isinstance(node, list):
            for item in node:
                yield from refs(item)

    found = set(refs(spec))
    assert "#/components/schemas/IssueBody" in found  # the batch request's items
    for ref in found:
        prefix, _, name = ref.rpartition("/")
        assert prefix == "#/components/schemas" and name in schemas, ref


def test_no_hand_written_body_schema_is_left(spec: dict[str, Any]) -> None:
    """Every JSON body the document describes under a documented path is a wire Struct's
    (FastAPI's own validation-error bodies aside)."""
    documented = {_generated(b)["title"] for b in (*wire.REQUEST_BODIES, *wire.ANSWER_BODIES)}
    for method, path in OPERATIONS:
        operation = spec["paths"][path][method]
        bodies = [operation.get("requestBody")] + [
            r for code, r in operation["responses"].items() if code.startswith("2")
        ]
        for content in filter(None, bodies):
            assert _json_schema(content).get("title") in documented, (method, path)
