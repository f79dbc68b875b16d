"""A scan asks the authority in bulk: one JWKS and one lookup per 500 certificates, never one
request per credential; counted at the authority (its request metrics), on real OpenBao.

Revocation, unknown certificates and the per-IP view limit are decided exactly as the
one-by-one ``GET`` decided them."""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from passgeni_core import (
    AuthorityClient,
    CertificateRefs,
    Credential,
    NotFound,
    open_store,
    parse_store_uri,
    provision_into_store,
    scan,
)
from passgeni_core.stores import write_proof
from tests.integration.vault_plugin_helper.fixtures import *  # noqa: F403 - fixtures
from tests.integration.vault_plugin_helper.fixtures import Authority
from tests.support import OpenBaoServer
from tests.support.authority import FakeClock

pytestmark = pytest.mark.usefixtures("vault_env")

JWKS = "GET /.well-known/jwks.json"
ONE = "GET /api/certificates/{cert_id}"
LOOKUP = "POST /api/certificates/lookup"


def fake_id(n: int) -> str:
    """A well-formed certificate id the authority never issued."""
    return "pg_" + base64.b32encode(n.to_bytes(15, "big")).decode().lower()


def requests_by_route(url: str) -> dict[str, float]:
    """The authority's own count of the requests it answered, by route (``/metrics``)."""
    text = requests.get(f"{url}/metrics", timeout=10).text
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        if family.name != "passgeni_http_request_duration_seconds":
            continue
        for sample in family.samples:
            if sample.name.endswith("_count") and sample.labels["endpoint"] != "GET /metrics":
                out[sample.labels["endpoint"]] = sample.value
    return out


def delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0)}


def fake_refs_credential(uid: str, name: str, cert_id: str) -> str:
    """A credential whose value names a certificate the authority never issued."""
    uri = f"vault://secret/{uid}/{name}"
    store = open_store(uri)
    target = parse_store_uri(uri)
    plan = store.prepare(target)
    refs = CertificateRefs(cert_id=cert_id, cert_url=f"https://nowhere.example/cert/{cert_id}")
    credential = Credential(password="p" * 20, binding_key=b"k" * 32)
    write_proof(store, plan, credential, refs)  # the proof record names the certificate
    store.write(plan, credential, refs)
    return uri + "#password"


def test_a_scan_makes_one_jwks_and_one_lookup_request(authority: Authority, uid: str) -> None:
    client = authority.client()
    vault = open_store("vault://secret")
    for i in range(12):
        provision_into_store(client, vault, f"vault://secret/{uid}/c{i:02d}", "soc2")
    revoked = vault.read(parse_store_uri(f"vault://secret/{uid}/c03"))
    assert revoked is not None and revoked.refs is not None
    client.revoke(revoked.refs.cert_id, "left the company")
    unknown = fake_refs_credential(uid, "ghost", fake_id(7))

    scanner = AuthorityClient(authority.url, issuer=authority.embedded.issuer)
    before = requests_by_route(authority.url)
    report = scan(scanner, [f"vault://secret/{uid}"])
    asked = delta(before, requests_by_route(authority.url))
    # The authority answered this scan exactly one JWKS and one lookup (13 certificates), and
    # no request per credential.
    assert asked == {JWKS: 1, LOOKUP: 1}, asked
    by_uri = {e.uri: e for e in report.entries}
    assert len(by_uri) == 13
    gone = by_uri[f"vault://secret/{uid}/c03#password"]
    assert gone.status == "revoked" and gone.revocation_reason == "left the company"
    assert gone.detail.endswith("left the company") and gone.reasons == ("revoked",)
    assert by_uri[unknown].status == "no_certificate"
    assert "knows no certificate" in by_uri[unknown].detail
    assert sorted(e.status for e in report.entries).count("valid") == 11


def test_lookup_answers_in_order_and_splits_at_500(authority: Authority, uid: str) -> None:
    client = authority.client()
    vault = open_store("vault://secret")
    provision_into_store(client, vault, f"vault://secret/{uid}/x", "soc2")
    stored = vault.read(parse_store_uri(f"vault://secret/{uid}/x"))
    assert stored is not None and stored.refs is not None
    real = stored.refs.cert_id
    ids = [fake_id(1), real, "not-an-id", *(fake_id(100 + i) for i in range(500))]
    before = requests_by_route(authority.url)
    got = AuthorityClient(authority.url).get_certificates([*ids, real])
    assert delta(before, requests_by_route(authority.url)) == {LOOKUP: 2}
    assert list(got) == list(dict.fromkeys(ids))  # each id once, in order
    one = AuthorityClient(authority.url).get_certificate(real)
    assert got[real] == one
    assert all(isinstance(got[i], NotFound) for i in ids if i != real)


@pytest.fixture
def limited(tmp_path: Path) -> Iterator[Any]:
    """An authority allowing 600 certificate views per IP per minute, its clock stopped (no
    view is refilled during the test)."""
    from passgeni_authority import AuthoritySettings, RateLimits
    from passgeni_authority.embedded import EmbeddedAuthority

    limits = dataclasses.replace(RateLimits.unlimited(), views_per_ip_per_minute=600)
    settings = AuthoritySettings(
        state_dir=tmp_path, fips_strict=False, rate_limits=limits, clock=FakeClock()
    )
    with EmbeddedAuthority(state_dir=tmp_path, settings=settings, issuer_is_base_url=True) as a:
        yield a


def test_over_the_view_limit_the_refused_ids_are_asked_one_by_one(
    limited: Any, openbao: OpenBaoServer, uid: str
) -> None:
    url, key, issuer = limited.base_url, limited.api_key, limited.issuer
    client = AuthorityClient(url, key, issuer=issuer)
    vault = open_store("vault://secret")
    for i in range(3):
        provision_into_store(client, vault, f"vault://secret/{uid}/c{i}", "soc2")
    # Each id counts as a view, as a GET would: the first ones are answered, and from the
    # first one refused on, every id is refused (and not counted).
    got = client.get_certificates([fake_id(i) for i in range(602)])
    kinds = [type(v).__name__ for v in got.values()]
    assert kinds[0] == "NotFound" and kinds[-1] == "RateLimited"
    assert kinds == sorted(kinds)  # every NotFound before every RateLimited
    before = requests_by_route(url)
    report = scan(AuthorityClient(url, issuer=issuer), [f"vault://secret/{uid}"])
    asked = delta(before, requests_by_route(url))
    # The lookup refused every credential's record; each was then asked alone (the client
    # waits for the view limit's Retry-After, as it always did) and refused again: reported
    # as errors, never judged on a record it did not get.
    assert asked[LOOKUP] == 1 and asked[ONE] >= 3
    assert [e.status for e in report.entries] == ["error"] * 3
    assert all(e.detail.startswith("rate_limited: ") for e in report.entries)


def test_a_key_unknown_to_the_scans_jwks_is_refetched_once(tmp_path: Path, uid: str) -> None:
    from passgeni_authority import AuthoritySettings, RateLimits
    from passgeni_authority.embedded import EmbeddedAuthority

    settings = AuthoritySettings(
        state_dir=tmp_path, fips_strict=False, rate_limits=RateLimits.unlimited()
    )
    with EmbeddedAuthority(state_dir=tmp_path, settings=settings, issuer_is_base_url=True) as a:
        client = AuthorityClient(a.base_url, a.api_key, issuer=a.issuer)
        vault = open_store("vault://secret")
        provision_into_store(client, vault, f"vault://secret/{uid}/old", "soc2")
        scanner = AuthorityClient(a.base_url, issuer=a.issuer)
        scanner.jwks()  # cached: the keys as they were before the rotation
        a.service.rotate_keys()
        provision_into_store(client, vault, f"vault://secret/{uid}/new", "soc2")
        before = requests_by_route(a.base_url)
        report = scan(scanner, [f"vault://secret/{uid}"])
        asked = delta(before, requests_by_route(a.base_url))
    # The new credential's key was not in the cached JWKS: fetched again, once, and judged.
    assert [e.status for e in report.entries] == ["valid", "valid"]
    assert asked == {JWKS: 1, LOOKUP: 1}, asked
