"""Generation sessions over HTTP (docs/api-contract.md), against real uvicorn: 60-second
lifetime, single use (also under concurrent redemptions), bound to their tenant, unforgeable;
an identical retry by the owner gets the same certificate back (a lost answer loses nothing).
"""

from __future__ import annotations

import concurrent.futures

from tests.support.authority import Server, plain_session

# --- sessions ----------------------------------------------------------------------


def test_session_expires_after_60_seconds(authority: Server, make_tenant):
    t = make_tenant()
    fresh = t.session()
    authority.clock.advance(59)
    assert t.post("/api/generate-certificate", {"generation_session_id": fresh}).status_code == 201
    stale = t.session()
    authority.clock.advance(60)
    r = t.post("/api/generate-certificate", {"generation_session_id": stale})
    assert (r.status_code, r.json()["code"]) == (410, "session_expired")


def test_session_is_single_use_and_an_identical_retry_gets_the_same_certificate(make_tenant):
    t = make_tenant()
    sid = t.session()
    body = {"generation_session_id": sid, "label": "db", "target": {"system": "vault", "path": "a"}}
    first = t.post("/api/generate-certificate", body)
    assert first.status_code == 201, first.text
    # The answer was lost, the client sends the same request again: the same certificate,
    # not a second one and not a refusal.
    again = t.post("/api/generate-certificate", body)
    assert again.status_code == 201, again.text
    assert again.json() == first.json()
    # Anything else is a second use: another label, another target, no target.
    for other in (
        {**body, "label": "other"},
        {**body, "target": {"system": "vault", "path": "b"}},
        {"generation_session_id": sid, "label": "db"},
    ):
        r = t.post("/api/generate-certificate", other)
        assert (r.status_code, r.json()["code"]) == (409, "session_already_used"), other
    # A revoked certificate is never handed out again as if new.
    cert_id = first.json()["cert_id"]
    assert t.post(f"/api/certificates/{cert_id}/revoke", {"reason": "test"}).status_code == 200
    r = t.post("/api/generate-certificate", body)
    assert (r.status_code, r.json()["code"]) == (409, "session_already_used")
    # One certificate for the session, whatever was tried.
    audit = t.get("/api/audit", params={"page_size": 500}).json()
    assert [item["cert_id"] for item in audit["items"]] == [cert_id]


def test_concurrent_redemptions_issue_exactly_one_certificate(make_tenant):
    t = make_tenant()
    sid = t.session()

    def redeem(label: str) -> tuple[int, str]:
        s = plain_session()
        s.headers.update(t.http.headers)
        url = f"{t.server.url}/api/generate-certificate"
        r = s.post(url, json={"generation_session_id": sid, "label": label}, timeout=30)
        return r.status_code, r.json().get("cert_id", r.json().get("code"))

    # Eight identical requests racing: every one answered with the one certificate.
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        same = list(pool.map(redeem, ["x"] * 8))
    assert {code for code, _ in same} == {201} and len({cert for _, cert in same}) == 1, same
    # Eight different ones racing for a fresh session: one wins, seven are second uses.
    sid = t.session()
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        codes = sorted(pool.map(redeem, [f"l{i}" for i in range(8)]))
    assert [c for c, _ in codes] == [201] + [409] * 7, codes


def test_other_tenant_cannot_redeem_a_session(make_tenant):
    alice, mallory = make_tenant(), make_tenant()
    sid = alice.session()
    r = mallory.post("/api/generate-certificate", {"generation_session_id": sid})
    assert (r.status_code, r.json()["code"]) == (400, "session_invalid")
    # The failed attempt did not burn alice's session.
    assert (
        alice.post("/api/generate-certificate", {"generation_session_id": sid}).status_code == 201
    )


def test_forged_sessions_are_invalid(make_tenant):
    t = make_tenant()
    sid = t.session()
    header, payload, mac = sid.split(".")
    forged = f"{header}.{payload}.{'A' * len(mac)}"
    for bad in (forged, "not-a-token", 12, ""):
        r = t.post("/api/generate-certificate", {"generation_session_id": bad})
        assert (r.status_code, r.json()["code"]) == (400, "session_invalid"), bad
    r = t.post("/api/generate-certificate", {"generation_session_id": sid, "label": "x" * 201})
    assert (r.status_code, r.json()["code"]) == (400, "invalid_request")
    # A refused body does not consume the session.
    assert t.post("/api/generate-certificate", {"generation_session_id": sid}).status_code == 201
