"""Generation sessions over HTTP (docs/api-contract.md), against real uvicorn: 60-second
lifetime, single use (also under concurrent redemptions), bound to their tenant, unforgeable.
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


def test_session_is_single_use(make_tenant):
    t = make_tenant()
    sid = t.session()
    assert t.post("/api/generate-certificate", {"generation_session_id": sid}).status_code == 201
    r = t.post("/api/generate-certificate", {"generation_session_id": sid})
    assert (r.status_code, r.json()["code"]) == (409, "session_already_used")


def test_concurrent_redemptions_issue_exactly_one_certificate(make_tenant):
    t = make_tenant()
    sid = t.session()

    def redeem(_: int) -> int:
        s = plain_session()
        s.headers.update(t.http.headers)
        url = f"{t.server.url}/api/generate-certificate"
        return s.post(url, json={"generation_session_id": sid}, timeout=30).status_code

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        codes = sorted(pool.map(redeem, range(8)))
    assert codes == [201] + [409] * 7


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
