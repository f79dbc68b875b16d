"""The batch fast path over real HTTP: ``POST /api/generate-batch`` and large
``POST /api/generate-certificates`` requests (authorised, rate-limited, signed
and redeemed in the request's own transaction). The rules must be the
same as on the plain path: single use (also under concurrent replays), tenant
isolation, per-item errors in order, distinct status-list indexes, the
request's labels and commitments in the signed claims, and per-IP generation
limits counting every session of a batch.
"""

from __future__ import annotations

import base64
import json
import threading
from typing import Any

from passgeni_core import verify_certificate
from tests.support.authority import Server

COMMITMENT = "A" * 43


def _claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    data: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return data


def _batch_sessions(tenant: Any, count: int) -> list[str]:
    r = tenant.post("/api/generate-batch", {"compliance_standard": "soc2", "count": count})
    assert r.status_code == 200, r.text
    ids: list[str] = r.json()["generation_session_ids"]
    assert len(ids) == count and len(set(ids)) == count
    return ids


def test_generate_batch_answers_like_generate(authority: Server, make_tenant: Any) -> None:
    t = make_tenant()
    r = t.post("/api/generate-batch", {"compliance_standard": "soc2", "count": 3})
    single = t.post("/api/generate", {"compliance_standard": "soc2"}).json()
    body = r.json()
    assert body["expires_in"] == single["expires_in"] == 60
    for field in ("compliance_standard", "standards_met", "entropy_bits", "parameters"):
        assert body[field] == single[field]
    for bad in (
        {"compliance_standard": "soc2"},
        {"compliance_standard": "soc2", "count": 0},
        {"compliance_standard": "soc2", "count": 1001},
        {"compliance_standard": "soc2", "count": "3"},
        {"compliance_standard": "soc2", "count": True},
        {"compliance_standard": "soc2", "count": 2, "password": "x"},
    ):
        r = t.post("/api/generate-batch", bad)
        assert r.status_code == 400 and r.json()["code"] == "invalid_request", (bad, r.text)
    r = t.http.post(
        f"{authority.url}/api/generate-batch", json={"count": 2}, headers={"Authorization": ""}
    )
    assert r.status_code == 401


def test_generate_batch_counts_every_session_against_the_ip_limit(
    authority: Server, make_tenant: Any
) -> None:
    t = make_tenant(automation=False)
    # Default: 10 generation attempts per IP per hour; a batch of 11 is 11 attempts,
    # which can never fit: refused as such (400, no Retry-After), charging nothing.
    r = t.post("/api/generate-batch", {"compliance_standard": "soc2", "count": 11})
    assert (r.status_code, r.json()["code"]) == (400, "invalid_request")
    assert "Retry-After" not in r.headers and "per IP address per hour" in r.json()["message"]
    authority.clock.advance(5)  # clear of the burst bucket
    r = t.post("/api/generate-batch", {"compliance_standard": "soc2", "count": 5})
    assert r.status_code == 200, r.text


def test_large_batch_rules_hold(authority: Server, make_tenant: Any) -> None:
    t = make_tenant()
    other = make_tenant()
    ids = _batch_sessions(t, 12)
    foreign = _batch_sessions(other, 1)[0]
    used = ids[11]
    assert t.post("/api/generate-certificate", {"generation_session_id": used}).status_code == 201
    items: list[Any] = [
        {"generation_session_id": sid, "label": f"n{i}"} for i, sid in enumerate(ids)
    ]
    items[3]["credential_commitment"] = COMMITMENT
    items += [{"generation_session_id": ids[0]}, {"generation_session_id": foreign}, "nope"]
    r = t.post("/api/generate-certificates", {"items": items})
    assert r.status_code == 201, r.text
    out = r.json()["certificates"]
    codes = [o["error"]["code"] if "error" in o else "ok" for o in out]
    assert codes == ["ok"] * 3 + ["invalid_request"] + ["ok"] * 7 + [
        "session_already_used",
        "session_already_used",
        "session_invalid",
        "invalid_request",
    ]
    jwks = authority.jwks()
    idxs = set()
    for i, o in enumerate(out[:11]):
        if i == 3:
            continue  # its credential commitment was refused
        cert = verify_certificate(o["token"], jwks, issuer=authority.url, now=authority.clock())
        claims = _claims(o["token"])
        assert claims["sub"] == t.user and claims["label"] == f"n{i}"
        assert claims["jti"] == o["cert_id"] == cert.claims.cert_id
        idxs.add(claims["status"]["status_list"]["idx"])
    assert len(idxs) == 10
    assert _claims(out[5]["token"])["generation"]["generator"] == "passgeni-shake256-v1"
    assert "credential_commitment" not in _claims(out[5]["token"])
    # Stored and public, exactly as answered.
    page = t.get(f"/api/certificates/{out[5]['cert_id']}").json()
    assert page["token"] == out[5]["token"] and page["label"] == "n5"
    # Another tenant cannot redeem these sessions; an identical retry gets the same
    # certificates back, a changed one gets nothing.
    redeemed = items[:3] + items[4:11]
    again = t.post("/api/generate-certificates", {"items": redeemed}).json()["certificates"]
    assert again == out[:3] + out[4:11]
    changed = [{**item, "label": "changed"} for item in redeemed]
    again = t.post("/api/generate-certificates", {"items": changed}).json()["certificates"]
    assert all(o["error"]["code"] == "session_already_used" for o in again)
    theirs = other.post("/api/generate-certificates", {"items": redeemed}).json()
    assert all(o["error"]["code"] == "session_invalid" for o in theirs["certificates"])


def test_concurrent_identical_batches_issue_each_session_once(
    authority: Server, make_tenant: Any
) -> None:
    t = make_tenant()
    ids = _batch_sessions(t, 40)
    items = [{"generation_session_id": sid} for sid in ids]
    answers: list[list[dict[str, Any]]] = []
    lock = threading.Lock()

    def send() -> None:
        r = t.post("/api/generate-certificates", {"items": items})
        assert r.status_code == 201, r.text
        with lock:
            answers.append(r.json()["certificates"])

    threads = [threading.Thread(target=send) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    # Identical requests are retries of one another: each is answered with the same
    # 40 certificates, and only 40 exist.
    issued = [o["cert_id"] for o in answers[0]]
    assert len(set(issued)) == 40
    assert all(a == answers[0] for a in answers), "every answer holds the same certificates"
    audit = t.get("/api/audit", params={"page_size": 500}).json()
    assert sorted(item["cert_id"] for item in audit["items"]) == sorted(issued)


def test_a_lone_surrogate_in_one_target_fails_that_item_only(
    authority: Server, make_tenant: Any
) -> None:
    # "\ud800" is valid JSON but no UTF-8 text: it cannot be signed into a token.
    # Before this was checked, encoding the claims raised inside the batch and
    # the whole request answered 500.
    t = make_tenant()
    ids = _batch_sessions(t, 3)
    raw = (
        '{"items":['
        f'{{"generation_session_id":"{ids[0]}"}},'
        f'{{"generation_session_id":"{ids[1]}","target":{{"system":"vault","path":"a\\ud800b"}}}},'
        f'{{"generation_session_id":"{ids[2]}","target":{{"system":"vault","path":"kv/é"}}}}'
        "]}"
    )
    r = t.http.post(
        f"{authority.url}/api/generate-certificates",
        data=raw.encode(),
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 201, r.text
    out = r.json()["certificates"]
    assert "cert_id" in out[0] and "cert_id" in out[2]
    assert out[1]["error"]["code"] == "invalid_request"
    assert "surrogate" in out[1]["error"]["message"]
    assert _claims(out[2]["token"])["target"] == {"system": "vault", "path": "kv/é"}
    # The refused item's session was not used up: it redeems once fixed.
    again = t.post("/api/generate-certificate", {"generation_session_id": ids[1]})
    assert again.status_code == 201, again.text
