"""Hostile input against the real authority over HTTP (uvicorn, SQLite, served limits).

* Schemathesis against ``/openapi.json`` (bounded examples per operation):
  never a 5xx, every error a JSON ``{code, message}``.
* Parameters and bodies: lengths 0/negative/huge, unknown classes, Unicode,
  control characters and lone surrogates in custom sets, 10 MB (declared and
  chunked), deep nesting, duplicate keys, NaN, non-UTF-8, non-objects.
* Missing and malformed API keys.

After every hostile request the process still answers ``/healthz``. Forged
session and certificate tokens are in ``test_hostile_tokens.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings

from tests.reliability._hostile import *  # noqa: F403 - the fixtures server, alice, bob
from tests.reliability._hostile import Tally, healthy, refused, tenant
from tests.support.authority import Server, Tenant

TRIED = Tally()

#: Schemathesis examples per operation (bounded for make test).
EXAMPLES = 30


# -- schemathesis -------------------------------------------------------------------------------


def test_openapi_fuzz_never_5xx_and_errors_are_code_message(server: Server) -> None:
    """Schemathesis: every operation of /openapi.json, bounded examples each."""
    api = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
    who = tenant(server)
    headers = {"Authorization": f"Bearer {who.key}", "X-Forwarded-For": who.ip}
    operations = [result.ok() for result in api.get_all_operations()]
    assert len(operations) >= 10, [op.label for op in operations]
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        def fuzz(case: Any) -> None:
            response = case.call(base_url=server.url, headers=headers, timeout=30)
            TRIED.add("schemathesis requests")
            assert response.status_code < 500, (case.method, case.path, response.text[:300])
            if response.status_code >= 400:
                body = response.json()
                assert set(body) == {"code", "message"}, body
                assert isinstance(body["code"], str) and isinstance(body["message"], str)

        fuzz()
    healthy(server)


# -- parameters and bodies ----------------------------------------------------------------------

SOC2 = {"length": 20, "upper": True, "lower": True, "digits": True, "special": True}


@pytest.mark.parametrize(
    ("name", "parameters"),
    [
        ("length 0", {**SOC2, "length": 0}),
        ("length -1", {**SOC2, "length": -1}),
        ("length 10^9", {**SOC2, "length": 10**9}),
        ("length 10^400", {**SOC2, "length": 10**400}),
        ("length 20.5", {**SOC2, "length": 20.5}),
        ("length '20'", {**SOC2, "length": "20"}),
        ("length true", {**SOC2, "length": True}),
        ("length null", {**SOC2, "length": None}),
        ("unknown class", {**SOC2, "emoji": True}),
        ("class not a bool", {**SOC2, "upper": "yes"}),
        ("min > length", {**SOC2, "min_upper": 30}),
        ("negative minimum", {**SOC2, "min_digits": -5}),
        (
            "no class",
            {"length": 20, "upper": False, "lower": False, "digits": False, "special": False},
        ),
        ("special NUL", {**SOC2, "special_chars": "!\x00"}),
        ("special control", {**SOC2, "special_chars": "!\x1b[31m\x07"}),
        ("special RTL override", {**SOC2, "special_chars": "!\u202e"}),
        ("special emoji", {**SOC2, "special_chars": "!\U0001f600"}),
        ("special combining", {**SOC2, "special_chars": "!e\u0301"}),
        ("special letters", {**SOC2, "special_chars": "!abc"}),
        ("special empty", {**SOC2, "special_chars": ""}),
        ("special huge", {**SOC2, "special_chars": "!" * 50_000}),
        ("exclude everything", {**SOC2, "exclude": "".join(chr(c) for c in range(33, 127))}),
        ("exclude control", {**SOC2, "exclude": "\x00\x01"}),
        ("parameters a list", [20]),
        ("parameters a string", "soc2"),
    ],
)
def test_hostile_parameters_are_refused(
    server: Server, alice: Tenant, name: str, parameters: Any
) -> None:
    r = alice.post("/api/generate", {"compliance_standard": "soc2", "parameters": parameters})
    TRIED.add("hostile parameters")
    assert r.status_code in (400, 413, 422), (name, r.status_code, r.text[:300])
    body = r.json()
    assert set(body) == {"code", "message"}, body
    assert body["code"] in {
        "invalid_parameters",
        "length_out_of_range",
        "conflicting_parameters",
        "preset_not_met",
        "invalid_request",
    }, (name, body)
    healthy(server)


RAW_BODIES: dict[str, tuple[bytes, int | set[int]]] = {
    "lone surrogate in a custom set": (
        b'{"compliance_standard":"soc2","parameters":{"length":20,"special_chars":"!\\ud800"}}',
        422,
    ),
    "unknown preset": (b'{"compliance_standard":"../../etc/passwd"}', 404),
    "preset unicode": (b'{"compliance_standard":"soc2\\u0000"}', 404),
    "duplicate keys": (b'{"compliance_standard":"soc2","compliance_standard":"nist-800-63b"}', 400),
    "nested duplicate keys": (
        b'{"compliance_standard":"soc2","parameters":{"length":20,"length":8}}',
        400,
    ),
    "deep nesting (objects)": (b'{"a":' * 10_000 + b"1" + b"}" * 10_000, 400),
    "deep nesting (arrays)": (b"[" * 30_000 + b"]" * 30_000, 400),
    "NaN": (b'{"compliance_standard":"soc2","parameters":{"length":NaN}}', 400),
    "Infinity": (b'{"compliance_standard":"soc2","parameters":{"length":Infinity}}', 400),
    "not UTF-8": (b'{"compliance_standard":"soc2\xff\xfe"}', 400),
    "UTF-16": ('{"compliance_standard":"soc2"}'.encode("utf-16"), 400),
    "not JSON": (b"compliance_standard=soc2", 400),
    "empty": (b"", 400),
    "a list": (b'["soc2"]', 400),
    "a string": (b'"soc2"', 400),
    "a password field": (b'{"compliance_standard":"soc2","password":"hunter2hunter2"}', 400),
    "huge number": (
        b'{"compliance_standard":"soc2","parameters":{"length":1' + b"0" * 4000 + b"}}",
        422,
    ),
    "number beyond int parsing": (
        b'{"compliance_standard":"soc2","parameters":{"length":1' + b"0" * 50_000 + b"}}",
        400,
    ),
}


@pytest.mark.parametrize("name", sorted(RAW_BODIES))
def test_hostile_bodies_are_refused(server: Server, alice: Tenant, name: str) -> None:
    raw, status = RAW_BODIES[name]
    r = alice.http.post(
        f"{server.url}/api/generate",
        data=raw,
        headers={"Content-Type": "application/json"},
        timeout=30,
    )
    TRIED.add("hostile bodies")
    refused(
        r,
        status,
        {"invalid_request", "invalid_parameters", "unknown_preset", "length_out_of_range"},
    )
    healthy(server)


def test_ten_megabyte_bodies_are_refused_before_parsing(server: Server, alice: Tenant) -> None:
    big = b'{"compliance_standard":"soc2","label":"' + b"x" * (10 * 1024 * 1024) + b'"}'
    for path in ("/api/generate", "/api/generate-certificate", "/api/generate-certificates"):
        # Declared length.
        r = alice.http.post(
            f"{server.url}{path}",
            data=big,
            headers={"Content-Type": "application/json"},
            timeout=60,
        )
        refused(r, 413, "invalid_request")

        # Chunked, no length declared: refused once 64 KiB have arrived.
        def chunks() -> Iterator[bytes]:
            for i in range(0, len(big), 1 << 16):
                yield big[i : i + (1 << 16)]

        try:
            r = alice.http.post(
                f"{server.url}{path}",
                data=chunks(),
                headers={"Content-Type": "application/json"},
                timeout=60,
            )
        except requests.ConnectionError:
            pass  # the server answered 413 and closed before the upload finished
        else:
            refused(r, 413, "invalid_request")
        TRIED.add("hostile bodies", 2)
    healthy(server)


def test_unauthenticated_and_malformed_keys_are_refused(server: Server) -> None:
    for header in (
        None,
        "",
        "Bearer",
        "Bearer ",
        "Basic dXNlcjpwYXNz",
        "Bearer pgk_aaaaaaaa_" + "A" * 43,
        "Bearer pgk_../../etc_x",
        "Bearer " + "A" * 8000,
        "Bearer pgk_aaaaaaaa_\u00e9",
    ):
        headers = {} if header is None else {"Authorization": header}
        try:
            r = requests.post(
                f"{server.url}/api/generate",
                json={"compliance_standard": "soc2"},
                headers=headers,
                timeout=30,
            )
        except UnicodeEncodeError:
            continue  # the client library itself refuses non-Latin-1 headers
        TRIED.add("hostile credentials")
        refused(r, 401, "unauthenticated")
    healthy(server)


def test_report_what_was_tried() -> None:
    """Runs last in this module: the counts go to docs/reliability.md."""
    TRIED.report()
