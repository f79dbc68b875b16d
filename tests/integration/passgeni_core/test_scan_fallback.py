"""A scan against an authority without ``POST /api/certificates/lookup`` (an older one: the
scripted authority answers it 404) asks one ``GET`` per credential, as scans always did, and
judges the same."""

from __future__ import annotations

from passgeni_core import AuthorityClient, open_store, provision_into_store, scan
from tests.support.scripted_authority import API_KEY, ScriptedAuthority


def test_without_the_lookup_each_record_is_asked_alone(fake: ScriptedAuthority) -> None:
    client = AuthorityClient(fake.url, API_KEY, issuer=fake.url)
    store = open_store("memory://fallback")
    for name in ("a", "b", "c"):
        provision_into_store(client, store, f"memory://fallback/{name}", "soc2")
    report = scan(
        AuthorityClient(fake.url, issuer=fake.url),
        ["memory://fallback/"],
        opener=lambda uri, **_: store,
    )
    assert [e.status for e in report.entries] == ["valid"] * 3
    assert len(fake.requests_to("/api/certificates/lookup")) == 1
    gets = [s for s in fake.seen if s.path.startswith("/api/certificates/pg")]
    assert len(gets) == 3
