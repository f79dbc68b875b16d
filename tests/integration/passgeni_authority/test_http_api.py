"""The authority's HTTP contract (docs/api-contract.md), against real uvicorn over HTTP.

Each test names the rule it guards; each would fail if that rule broke.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import string
from urllib.parse import urlsplit

import pytest

from passgeni_core import (
    Credential,
    GenerationParameters,
    ProvenanceMismatch,
    entropy_report,
    verify_certificate,
    verify_credential,
)
from passgeni_core.model import new_seed
from tests.support.authority import Server, plain_session
from tests.support.seeds import commitment, commitments

COMMITMENT = "A" * 43


# --- the two-step flow ---------------------------------------------------------------


def test_generate_then_certificate_verifies_against_served_jwks(authority: Server, make_tenant):
    t = make_tenant()
    seed_commitment = commitment()
    r = t.post("/api/generate", {"compliance_standard": "soc2", "seed_commitment": seed_commitment})
    assert r.status_code == 200
    ticket = r.json()
    assert ticket["expires_in"] == 60
    assert "SOC2" in ticket["standards_met"] and ticket["compliance_standard"] == "SOC2"
    assert ticket["entropy_bits"] > 100
    assert ticket["generator"] == "passgeni-shake256-v1"
    nonce = ticket["authority_nonce"]
    assert len(nonce) == 43 and nonce != seed_commitment
    r = t.post(
        "/api/generate-certificate",
        {
            "generation_session_id": ticket["generation_session_id"],
            "target": {"system": "vault", "path": "secret/app/db#password", "version": "3"},
            "label": "db-password",
        },
    )
    assert r.status_code == 201
    cert = r.json()
    assert cert["cert_id"].startswith("pg_")
    url = urlsplit(cert["cert_url"])
    assert cert["cert_url"] == f"{authority.url}/cert/{cert['cert_id']}"
    assert not url.query and not url.fragment
    assert not set("?&#%") & set(cert["cert_url"])
    verified = verify_certificate(
        cert["token"], authority.jwks(), issuer=authority.url, now=authority.clock()
    )
    claims = verified.claims
    assert claims.jti == cert["cert_id"]
    assert claims.sub == t.user
    # Observed by the authority: the commitment it was sent, the nonce it chose.
    assert claims.generation is not None and claims.credential_commitment is None
    assert claims.generation.to_dict() == {
        "generator": "passgeni-shake256-v1",
        "seed_commitment": seed_commitment,
        "nonce": nonce,
    }
    assert claims.target is not None and claims.target.path == "secret/app/db#password"
    assert claims.exp - claims.iat == 365 * 86400
    assert claims.parameters == ticket["parameters"]
    # The row was committed before the answer: the public record is there at once.
    record = plain_session().get(f"{authority.url}/api/certificates/{cert['cert_id']}").json()
    assert record["status"] == "valid" and record["token"] == cert["token"]


def test_server_recomputes_claims_and_never_accepts_passwords(make_tenant):
    t = make_tenant()
    r = t.post("/api/generate", {"compliance_standard": "soc2", "password": "hunter2hunter2"})
    assert r.status_code == 400 and r.json()["code"] == "invalid_request"
    assert "hunter2" not in r.text
    # Client-supplied claims are refused, not trusted.
    r = t.post("/api/generate", {"compliance_standard": "soc2", "standards_met": ["fips-140-3"]})
    assert (r.status_code, r.json()["code"]) == (400, "invalid_request")
    r = t.post("/api/generate", {"compliance_standard": "soc2", "parameters": {"length": 8}})
    assert (r.status_code, r.json()["code"]) == (422, "preset_not_met")
    r = t.post("/api/generate", {"compliance_standard": "no-such-standard"})
    assert (r.status_code, r.json()["code"]) == (404, "unknown_preset")
    r = t.post(
        "/api/generate", {"compliance_standard": "soc2", "parameters": {"length": 20, "x": 1}}
    )
    assert (r.status_code, r.json()["code"]) == (422, "invalid_parameters")
    # The alias works and the entropy is the server's own figure.
    params = GenerationParameters.for_preset("soc2", length=24)
    r = t.post("/api/generate", {"preset": "soc2", "parameters": params.to_dict()})
    assert r.status_code == 200
    assert r.json()["entropy_bits"] == entropy_report(params).bits


def test_served_authority_is_fips_strict(make_tenant):
    t = make_tenant()
    r = t.post("/api/generate", {"compliance_standard": "fips-140-3"})
    assert (r.status_code, r.json()["code"]) == (422, "preset_not_met")
    r = t.post("/api/generate", {"compliance_standard": "soc2"})
    assert "FIPS-140-3" not in r.json()["standards_met"]
    # The client's word is not enough under strict-v1: this host is not observed in FIPS
    # mode (the FIPS-mode host is tests/unit/passgeni_authority/test_declared_observed.py).
    r = t.post(
        "/api/generate",
        {"compliance_standard": "fips-140-3", "entropy_source": {"fips_mode": True}},
    )
    assert (r.status_code, r.json()["code"]) == (422, "preset_not_met")
    assert "not observed in FIPS mode" in r.json()["message"]
    r = t.post(
        "/api/generate",
        {"compliance_standard": "fips-140-3", "entropy_source": {"api": "Thales Luna HSM"}},
    )
    assert (r.status_code, r.json()["code"]) == (400, "invalid_entropy_source")
    assert "entropy_source.api" in r.json()["message"]


_SPECIALS = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"
_ONE_PER_CLASS = "".join(
    ch
    for ch in string.ascii_uppercase + string.ascii_lowercase + string.digits + _SPECIALS
    if ch not in "Aa7!"
)
_ALL_FOUR = {"min_upper": 1, "min_lower": 1, "min_digits": 1, "min_special": 1}


@pytest.mark.parametrize(
    ("standard", "parameters", "bits", "floor"),
    [
        # The three lying certificates: qqqqqqqq for NIST (0.0 bits), SOC 2 at
        # 31.94 and HIPAA at 23.81 bits, each with a pool shrunk through `exclude`.
        (
            "nist-800-63b",
            {"length": 8, "upper": False, "digits": False, "special": False,
             "exclude": string.ascii_lowercase.replace("q", "")},
            "0",
            "47.63 bits (8 characters over a 62-character pool)",
        ),
        (
            "soc2",
            {"length": 16, **_ALL_FOUR, "min_classes_present": 4, "exclude": _ONE_PER_CLASS},
            "31.94",
            "95.27 bits (16 characters over a 62-character pool)",
        ),
        (
            "hipaa",
            {"length": 12, **_ALL_FOUR, "min_classes_present": 4, "exclude": _ONE_PER_CLASS},
            "23.81",
            "71.45 bits (12 characters over a 62-character pool)",
        ),
    ],
)  # fmt: skip
def test_parameters_below_the_presets_entropy_floor_are_refused(
    make_tenant, standard: str, parameters: dict[str, object], bits: str, floor: str
):
    t = make_tenant()
    r = t.post("/api/generate", {"compliance_standard": standard, "parameters": parameters})
    assert (r.status_code, set(r.json())) == (422, {"code", "message"})
    assert r.json() == {
        "code": "preset_not_met",
        "message": f"parameters do not meet preset {standard}: exact entropy {bits} bits is "
        f"below the {standard} floor of {floor}",
    }
    # The batch endpoint refuses the same body: no session to redeem either way.
    r = t.post(
        "/api/generate-batch",
        {"compliance_standard": standard, "parameters": parameters, "count": 3},
    )
    assert (r.status_code, r.json()["code"]) == (422, "preset_not_met")


def test_a_class_shrunk_below_its_minimum_is_refused_even_above_the_floor(make_tenant):
    t = make_tenant()
    # 40 characters: far above SOC 2's floor, but every digit is a '7'.
    parameters = GenerationParameters.for_preset("soc2", length=40).to_dict()
    parameters["exclude"] = string.digits.replace("7", "")
    r = t.post("/api/generate", {"compliance_standard": "soc2", "parameters": parameters})
    assert (r.status_code, r.json()["code"]) == (422, "preset_not_met")
    message = r.json()["message"]
    assert (
        "digits has 1 distinct character(s) after exclusions, below the soc2 minimum of 4"
        in message
    )
    # A class the preset does not require counts too: NIST asks no digits, but allows them.
    parameters = {"length": 40, "exclude": string.digits.replace("7", "")}
    r = t.post("/api/generate", {"compliance_standard": "nist-800-63b", "parameters": parameters})
    assert (r.status_code, r.json()["code"]) == (422, "preset_not_met")
    assert "digits has 1 distinct character(s)" in r.json()["message"]
    parameters["digits"] = False
    r = t.post("/api/generate", {"compliance_standard": "nist-800-63b", "parameters": parameters})
    assert r.status_code == 200 and "NIST-800-63B" in r.json()["standards_met"]


# --- tenancy, audit, revocation ------------------------------------------------------


def test_tenants_never_see_or_revoke_each_other(make_tenant):
    alice, bob = make_tenant(), make_tenant()
    cert = alice.certificate()
    audit = bob.get("/api/audit").json()
    assert audit["total"] == 0 and audit["items"] == []
    r = bob.post(f"/api/certificates/{cert['cert_id']}/revoke", {"reason": "mine now"})
    assert (r.status_code, r.json()["code"]) == (404, "not_found")
    own = alice.get("/api/audit").json()
    assert [i["cert_id"] for i in own["items"]] == [cert["cert_id"]]
    assert own["items"][0]["status"] == "valid"


def test_team_keys_see_and_revoke_team_certificates(make_tenant):
    team = f"team-{make_tenant().user}"
    member = make_tenant(team=team)
    lead = make_tenant(team=team)
    outsider = make_tenant()
    cert = member.certificate()
    outsider.certificate()
    seen = {i["cert_id"] for i in lead.get("/api/audit").json()["items"]}
    assert seen == {cert["cert_id"]}
    r = lead.post(f"/api/certificates/{cert['cert_id']}/revoke", {"reason": "leaver"})
    assert r.status_code == 200 and r.json()["status"] == "revoked"


def test_revocation_is_shown_on_the_page_and_in_json(authority: Server, make_tenant):
    t = make_tenant()
    cert = t.certificate()
    cid = cert["cert_id"]
    assert t.post(f"/api/certificates/{cid}/revoke", {"reason": ""}).status_code == 400
    r = t.post(f"/api/certificates/{cid}/revoke", {"reason": "credential leaked in CI log"})
    assert r.status_code == 200
    revoked = r.json()
    assert revoked["status"] == "revoked" and revoked["revoked_at"]
    # Idempotent and non-destructive: the first reason and time stay, the token too.
    again = t.post(f"/api/certificates/{cid}/revoke", {"reason": "other"}).json()
    assert again["revocation_reason"] == "credential leaked in CI log"
    assert again["revoked_at"] == revoked["revoked_at"] and again["token"] == cert["token"]
    public = plain_session()
    page = public.get(f"{authority.url}/cert/{cid}")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert 'id="status" class="status status-revoked">revoked<' in page.text
    assert "credential leaked in CI log" in page.text and revoked["revoked_at"] in page.text
    as_json = public.get(f"{authority.url}/cert/{cid}", headers={"Accept": "application/json"})
    assert as_json.json()["status"] == "revoked"
    assert as_json.json()["revocation_reason"] == "credential leaked in CI log"
    twin = public.get(f"{authority.url}/api/certificates/{cid}").json()
    assert twin == as_json.json()
    # The signature itself stays valid: revocation is the authority's status, not a re-signing.
    verify_certificate(cert["token"], authority.jwks(), issuer=authority.url, now=authority.clock())


def test_audit_filters_and_pages(authority: Server, make_tenant):
    t = make_tenant()
    # Certificates carry whole seconds (JWT iat), so "since" is a whole second too.
    since = authority.clock().replace(microsecond=0).isoformat()
    a = t.certificate("soc2")
    b = t.certificate("pci-dss", GenerationParameters.for_preset("pci-dss", length=12).to_dict())
    c = t.certificate(
        "nist-800-63b",
        GenerationParameters.for_preset(
            "nist-800-63b", length=15, upper=False, special=False
        ).to_dict(),
    )
    t.post(f"/api/certificates/{a['cert_id']}/revoke", {"reason": "rotated"})
    everything = t.get("/api/audit").json()
    assert everything["total"] == 3
    ids = lambda resp: {i["cert_id"] for i in resp.json()["items"]}  # noqa: E731
    assert ids(t.get("/api/audit", params={"status": "revoked"})) == {a["cert_id"]}
    assert ids(t.get("/api/audit", params={"status": "valid"})) == {b["cert_id"], c["cert_id"]}
    assert ids(t.get("/api/audit", params={"status": "expired"})) == set()
    # soc2's parameters (20 chars, 4 classes) also meet PCI-DSS; c's do not.
    assert ids(t.get("/api/audit", params={"standard": "pci-dss"})) == {a["cert_id"], b["cert_id"]}
    # The claim id filters the same (certificates list claim ids, older ones preset ids).
    assert ids(t.get("/api/audit", params={"standard": "PCI-DSS"})) == {a["cert_id"], b["cert_id"]}
    assert ids(t.get("/api/audit", params={"since": since})) == ids(t.get("/api/audit"))
    assert ids(t.get("/api/audit", params={"until": "2000-01-01T00:00:00Z"})) == set()
    page = t.get("/api/audit", params={"page_size": 2, "page": 2}).json()
    assert (page["page"], page["page_size"], page["total"], len(page["items"])) == (2, 2, 3, 1)
    for params in ({"status": "bogus"}, {"since": "yesterday"}, {"page_size": 501}):
        r = t.get("/api/audit", params=params)
        assert (r.status_code, r.json()["code"]) == (400, "invalid_request"), params


def test_batch_issuance_keeps_order_and_reports_errors_per_item(authority: Server, make_tenant):
    t = make_tenant()
    other = make_tenant()
    good1, good2, foreign = t.session(), t.session(), other.session()
    used = t.session()
    t.post("/api/generate-certificate", {"generation_session_id": used})
    items = [
        {"generation_session_id": good1, "label": "one"},
        {"generation_session_id": used, "label": "a second use"},
        {"generation_session_id": foreign},
        {"generation_session_id": good2, "credential_commitment": COMMITMENT},
        {"generation_session_id": good1},
        "not an object",
    ]
    r = t.post("/api/generate-certificates", {"items": items})
    assert r.status_code == 201
    out = r.json()["certificates"]
    assert len(out) == 6
    codes = [o["error"]["code"] if "error" in o else "ok" for o in out]
    assert codes == [
        "ok",
        "session_already_used",
        "session_invalid",
        "invalid_request",  # a credential commitment: a chosen password's, refused
        "session_already_used",
        "invalid_request",
    ]
    jwks = authority.jwks()
    verify_certificate(out[0]["token"], jwks, issuer=authority.url, now=authority.clock())
    # The refused item's session was not spent: redeemed plainly, it gets its certificate.
    again = t.post("/api/generate-certificate", {"generation_session_id": good2})
    assert again.status_code == 201, again.text
    assert t.post("/api/generate-certificates", {"items": []}).status_code == 400
    r = t.post("/api/generate-certificates", {"items": [{}] * 1001})
    assert (r.status_code, r.json()["code"]) == (400, "invalid_request")


def test_a_session_needs_a_seed_commitment(authority: Server, make_tenant):
    t = make_tenant()
    r = t.post("/api/generate", {"compliance_standard": "soc2"}, commit=False)
    assert (r.status_code, r.json()["code"]) == (400, "seed_commitment_required")
    assert "seed_commitment" in r.json()["message"]
    r = t.post("/api/generate-batch", {"compliance_standard": "soc2", "count": 2}, commit=False)
    assert (r.status_code, r.json()["code"]) == (400, "seed_commitment_required")
    for bad in (
        {"seed_commitments": [commitment()]},  # one for two sessions
        {"seed_commitments": [commitment(), "not-base64url"]},
        {"seed_commitment": commitment(), "seed_commitments": commitments(2)},
    ):
        body = {"compliance_standard": "soc2", "count": 2, **bad}
        r = t.post("/api/generate-batch", body, commit=False)
        assert (r.status_code, r.json()["code"]) == (400, "invalid_request"), bad
    r = t.post("/api/generate", {"compliance_standard": "soc2", "seed_commitment": "!" * 43})
    assert (r.status_code, r.json()["code"]) == (400, "invalid_request")
    # Keyless: refused as unauthenticated first, whatever the body lacks.
    r = plain_session().post(f"{authority.url}/api/generate", json={"compliance_standard": "soc2"})
    assert r.status_code == 401


def test_a_chosen_password_cannot_be_certified(authority: Server, make_tenant):
    """Issue #16: a commitment to ``Password123!Password`` got a certificate. Now the only
    commitment a certificate carries is to a seed fixed before the authority's nonce."""
    t = make_tenant()
    chosen = Credential.create("Password123!Password")
    sid = t.session()
    r = t.post(
        "/api/generate-certificate",
        {"generation_session_id": sid, "credential_commitment": chosen.commitment},
    )
    assert (r.status_code, r.json()["code"]) == (400, "invalid_request")
    assert "credential_commitment is not accepted" in r.json()["message"]
    # Redeemed without it, the certificate names the seed's commitment: the chosen
    # password cannot be proven against it (see test_derive for the proof itself).
    cert = t.post("/api/generate-certificate", {"generation_session_id": sid}).json()
    claims = verify_certificate(
        cert["token"], authority.jwks(), issuer=authority.url, now=authority.clock()
    ).claims
    assert claims.credential_commitment is None and claims.generation is not None
    with pytest.raises(ProvenanceMismatch):
        verify_credential(claims, Credential.generated(chosen.password, new_seed()))


# --- keys ------------------------------------------------------------------------------


def test_key_rotation_keeps_old_certificates_verifiable(authority: Server, make_tenant):
    t = make_tenant()
    old = t.certificate()
    old_kid = json.loads(__import__("base64").urlsafe_b64decode(old["token"].split(".")[0] + "=="))[
        "kid"
    ]
    new_key = authority.service.rotate_keys()
    assert new_key.kid != old_kid
    fresh = t.certificate()
    jwks = authority.jwks()
    kids = [k["kid"] for k in jwks["keys"]]
    assert old_kid in kids and new_key.kid in kids
    for cert in (old, fresh):
        verify_certificate(cert["token"], jwks, issuer=authority.url, now=authority.clock())
    record = t.get(f"/api/certificates/{fresh['cert_id']}").json()
    assert record["kid"] == new_key.kid


def test_api_keys_are_stored_only_as_hashes(authority: Server, make_tenant):
    t = make_tenant()
    secret_part = t.key.split("_", 2)[2]
    raw = authority.db_path.read_bytes() + b"".join(
        p.read_bytes() for p in authority.state_dir.glob("authority.db-*") if p.is_file()
    )
    assert t.key.encode() not in raw and secret_part.encode() not in raw
    with sqlite3.connect(authority.db_path) as db:
        row = db.execute(
            "SELECT prefix, key_hash FROM api_keys WHERE user_id = ?", (t.user,)
        ).fetchone()
        columns = [c[1] for c in db.execute("PRAGMA table_info(api_keys)")]
    assert row == (t.key.split("_")[1], hashlib.sha256(t.key.encode()).hexdigest())
    assert "key" not in columns and "secret" not in columns


# --- errors and strict parsing ---------------------------------------------------------


def test_every_error_is_code_and_message_json(authority: Server, make_tenant):
    t = make_tenant()
    anon = plain_session()

    def check(response, status: int, code: str) -> None:
        assert response.status_code == status, response.text
        assert response.headers["content-type"].startswith("application/json")
        body = response.json()
        assert set(body) == {"code", "message"} and body["code"] == code
        assert "Traceback" not in response.text

    check(anon.post(f"{authority.url}/api/generate", json={}), 401, "unauthenticated")
    check(
        anon.get(
            f"{authority.url}/api/audit", headers={"Authorization": "Bearer pgk_aaaaaaaa_nope"}
        ),
        401,
        "unauthenticated",
    )
    check(anon.get(f"{authority.url}/no/such/path"), 404, "not_found")
    check(anon.delete(f"{authority.url}/healthz"), 405, "invalid_request")
    check(anon.get(f"{authority.url}/cert/pg_doesnotexist"), 404, "not_found")
    url = f"{authority.url}/api/generate"
    check(t.http.post(url, data=b'{"preset": "soc2", "preset": "hipaa"}'), 400, "invalid_request")
    check(t.http.post(url, data=b"[1, 2]"), 400, "invalid_request")
    check(t.http.post(url, data=b"{not json"), 400, "invalid_request")
    check(t.http.post(url, data=b'{"preset": NaN}'), 400, "invalid_request")
    check(t.http.post(url, data=b"\xff\xfe"), 400, "invalid_request")
    check(t.http.post(url, data=b" " * (64 * 1024 + 1)), 413, "invalid_request")

    def chunks():
        for _ in range(80):
            yield b" " * 1024

    check(t.http.post(url, data=chunks()), 413, "invalid_request")  # chunked, no length
    check(t.get("/api/audit", params={"page": "x"}), 400, "invalid_request")
    # A revoked key stops working at once.
    authority.service.revoke_api_key(t.key.split("_")[1])
    check(t.get("/api/audit"), 401, "unauthenticated")


def test_health_openapi_and_jwks_shape(authority: Server):
    s = plain_session()
    assert s.get(f"{authority.url}/healthz").json() == {"status": "ok"}
    spec = s.get(f"{authority.url}/openapi.json").json()
    for path in (
        "/api/generate",
        "/api/generate-certificate",
        "/api/generate-certificates",
        "/api/audit",
        "/api/certificates/{cert_id}/revoke",
        "/api/certificates/{cert_id}",
        "/cert/{cert_id}",
        "/.well-known/jwks.json",
        "/healthz",
    ):
        assert path in spec["paths"], path
    for key in authority.jwks()["keys"]:
        assert set(key) == {"kty", "crv", "x", "y", "kid", "alg", "use"}
        assert (key["kty"], key["crv"], key["alg"], key["use"]) == ("EC", "P-256", "ES256", "sig")


@pytest.mark.parametrize("accept", ["text/html", "*/*", "application/json"])
def test_certificate_page_content_negotiation(authority: Server, make_tenant, accept: str):
    cert = make_tenant().certificate()
    r = plain_session().get(f"{authority.url}/cert/{cert['cert_id']}", headers={"Accept": accept})
    assert r.status_code == 200
    if accept == "application/json":
        assert r.json()["cert_id"] == cert["cert_id"]
    else:
        assert cert["cert_id"] in r.text and cert["token"] in r.text
        assert 'jwt.decode(token, key.key, algorithms=["ES256"]' in r.text
        assert "default-src 'none'" in r.headers["Content-Security-Policy"]
