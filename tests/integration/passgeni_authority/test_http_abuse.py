"""The authority's abuse controls over HTTP (docs/api-contract.md, rate limits and usage
events), against real uvicorn: rate limits per user, per IP and per automation key, the
anomaly flag, and the usage events every request leaves.
"""

from __future__ import annotations

import sqlite3

from tests.support.authority import Server, plain_session

# --- abuse controls ------------------------------------------------------------------


def test_burst_of_five_then_one_per_second(authority: Server, make_tenant):
    t = make_tenant(automation=False)
    codes = [t.get("/api/audit").status_code for _ in range(5)]
    assert codes == [200] * 5
    r = t.get("/api/audit")
    assert (r.status_code, r.json()["code"]) == (429, "rate_limited")
    assert r.headers["Retry-After"] == "1"
    authority.clock.advance(1)
    assert t.get("/api/audit").status_code == 200
    assert t.get("/api/audit").status_code == 429


def test_sixty_requests_per_user_per_minute(authority: Server, make_tenant):
    t = make_tenant(automation=False)
    authority.clock.align(60)
    for i in range(60):
        assert t.get("/api/audit").status_code == 200, i
        authority.clock.advance(0.98)  # inside the burst bucket, never inside the window
    r = t.get("/api/audit")
    assert (r.status_code, r.json()["code"]) == (429, "rate_limited")
    # A sliding minute: the window ends 1.2 s later (60 - 60 x 0.98), and one more
    # request fits once its 60 count for 59 (1 s into the next window): 2.2 s.
    assert r.headers["Retry-After"] == "3"
    authority.clock.advance(1.3)
    assert t.get("/api/audit").status_code == 429  # a fixed window would admit here
    authority.clock.advance(1.0)
    assert t.get("/api/audit").status_code == 200


def test_ten_generation_attempts_per_ip_per_hour(authority: Server, make_tenant):
    t = make_tenant(automation=False)
    authority.clock.align(3600)
    for i in range(10):
        body = {"compliance_standard": "soc2" if i % 2 else "no-such-standard"}
        assert t.post("/api/generate", body).status_code in (200, 404), i
        authority.clock.advance(1)  # stay clear of the burst limit
    r = t.post("/api/generate", {"compliance_standard": "soc2"})
    assert (r.status_code, r.json()["code"]) == (429, "rate_limited")
    # A sliding hour: one more fits once this hour's 10 weigh 9 in the next one
    # (a tenth of it in), ~3950 s from the eleventh attempt.
    assert 3900 <= int(r.headers["Retry-After"]) <= 3960
    # Another address is not affected; an automation key from the same one is exempt.
    t.http.headers["X-Forwarded-For"] = "192.0.2.77"
    assert t.post("/api/generate", {"compliance_standard": "soc2"}).status_code == 200
    bulk = make_tenant(automation=True)
    bulk.http.headers["X-Forwarded-For"] = t.ip
    assert bulk.post("/api/generate", {"compliance_standard": "soc2"}).status_code == 200
    authority.clock.advance(3600)
    t.http.headers["X-Forwarded-For"] = t.ip
    assert t.post("/api/generate", {"compliance_standard": "soc2"}).status_code == 429
    authority.clock.advance(360)
    assert t.post("/api/generate", {"compliance_standard": "soc2"}).status_code == 200


def test_automation_keys_carry_their_own_limit(authority: Server, make_tenant):
    t = make_tenant(automation=False)
    key = authority.service.create_api_key(t.user, rate_limit=3)
    t.http.headers["Authorization"] = f"Bearer {key.key}"
    authority.clock.align(60)
    assert [t.get("/api/audit").status_code for _ in range(3)] == [200] * 3
    r = t.get("/api/audit")
    assert r.status_code == 429 and 1 <= int(r.headers["Retry-After"]) <= 60
    big = make_tenant(automation=True)
    assert all(big.get("/api/audit").status_code == 200 for _ in range(30))


def test_more_than_fifty_certificates_in_a_day_flags_an_anomaly(authority: Server, make_tenant):
    t = make_tenant()
    for sid_batch in ([t.session() for _ in range(25)], [t.session() for _ in range(25)]):
        r = t.post(
            "/api/generate-certificates",
            {"items": [{"generation_session_id": s} for s in sid_batch]},
        )
        assert r.status_code == 201
    assert t.get("/api/audit").json()["anomalies"] == []
    t.certificate()
    audit = t.get("/api/audit", params={"page_size": 1}).json()
    assert audit["total"] == 51
    assert len(audit["anomalies"]) == 1
    flag = audit["anomalies"][0]
    assert flag["user"] == t.user and flag["count_24h"] == 51 and flag["detected_at"]
    # Recorded, never blocking.
    t.certificate()
    assert len(t.get("/api/audit").json()["anomalies"]) == 1


def test_usage_events_record_generation_views_and_access(authority: Server, make_tenant):
    t = make_tenant()
    cert = t.certificate()
    plain_session().get(f"{authority.url}/cert/{cert['cert_id']}")
    with sqlite3.connect(authority.db_path) as db:
        kinds = {
            row[0]
            for row in db.execute(
                "SELECT kind FROM usage_events WHERE user_id = ? OR detail LIKE ?",
                (t.user, f"%{cert['cert_id']}%"),
            )
        }
    assert {"api_access", "certificate_issued", "certificate_view"} <= kinds
