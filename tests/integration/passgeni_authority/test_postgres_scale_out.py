"""Scale-out (issue #19 item 5): two authority instances (real ``serve`` subprocesses on
their own ports) on one PostgreSQL, each with a state directory of its own as on two
machines, one public URL (a load balancer's), the signing key in one shared key
directory (a shared volume; the Transit signer is in ``test_postgres_scale_out_signing``).

They share sessions, certificates, revocations (the other's page and signed status list
at once), API keys and their revocation, rate limits, quotas, status-list indexes,
signing keys and one transparency log; a session is redeemable exactly once across both.
"""

from __future__ import annotations

import base64
import concurrent.futures
import json
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import sqlalchemy

from passgeni_authority import AuthorityService, AuthoritySettings
from passgeni_core import verify_certificate
from passgeni_core.crypto import STATUS_INVALID, STATUS_VALID, verify_status_list
from tests.support import PostgresCluster
from tests.support.authority import plain_session
from tests.support.authority_processes import Machines, machines
from tests.support.seeds import commitment, with_commitments

PUBLIC_URL = "https://authority.scale-out.test"  # the load balancer's; no instance's own


@pytest.fixture(scope="module")
def deployment(
    postgres: PostgresCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    database_url = postgres.create_database(f"scale_{uuid.uuid4().hex[:8]}")
    work = tmp_path_factory.mktemp("pg-scale-out")
    with machines(
        work,
        database_url,
        public_url=PUBLIC_URL,
        shared_keys=work / "shared-keys",
        # The load balancer (here the test itself) forwards each client's address.
        env={"PASSGENI_TRUSTED_PROXIES": "127.0.0.1"},
    ) as deployed:
        settings = AuthoritySettings(
            database_url=database_url, state_dir=deployed.admin_state, public_url=PUBLIC_URL
        )
        with AuthorityService(settings) as admin:  # the operator's machine

            def key(user: str, **options: Any) -> str:
                return admin.create_api_key(user, **options).key

            yield {
                "machines": deployed,
                "urls": deployed.urls,
                "key": key("pg-alice", rate_limit=100000),
                "other_key": key("pg-bob", rate_limit=100000),
                "limited_key": key("pg-carol"),
                "new_key": key,
                "admin": admin,
                "database_url": database_url,
            }


def _client(key: str, ip: str | None = None) -> requests.Session:
    session = plain_session()
    session.headers["Authorization"] = f"Bearer {key}"
    if ip is not None:
        session.headers["X-Forwarded-For"] = ip  # the client's address, as the LB says
    return session


def _session(http: requests.Session, url: str) -> str:
    r = http.post(
        f"{url}/api/generate", json={"compliance_standard": "soc2", "seed_commitment": commitment()}
    )
    assert r.status_code == 200, r.text
    sid: str = r.json()["generation_session_id"]
    return sid


def _issue(http: requests.Session, url: str, redeem_at: str | None = None) -> dict[str, Any]:
    sid = _session(http, url)
    r = http.post(
        f"{redeem_at or url}/api/generate-certificate", json={"generation_session_id": sid}
    )
    assert r.status_code == 201, r.text
    cert: dict[str, Any] = r.json()
    return cert


def _jti(session_id: str) -> str:
    """The id a generation session token carries (its payload is not secret)."""
    payload = session_id.split(".")[1]
    jti: str = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["jti"]
    return jti


def _jwks(url: str) -> dict[str, Any]:
    jwks: dict[str, Any] = plain_session().get(f"{url}/.well-known/jwks.json").json()
    return jwks


def _sql(database_url: str, statement: str) -> list[Any]:
    engine = sqlalchemy.create_engine(database_url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(sqlalchemy.text(statement)))
    finally:
        engine.dispose()


def test_certificate_issued_by_one_is_listed_verified_and_revoked_through_the_other(
    deployment: dict[str, Any],
) -> None:
    a, b = deployment["urls"]
    http = _client(deployment["key"])
    # Both processes serve the same single key (the advisory lock made one, not two).
    jwks_a = _jwks(a)
    assert jwks_a == _jwks(b)
    assert len(jwks_a["keys"]) == 1
    cert = _issue(http, a)
    listed = http.get(f"{b}/api/audit").json()
    assert cert["cert_id"] in {i["cert_id"] for i in listed["items"]}
    verified = verify_certificate(cert["token"], _jwks(b), issuer=PUBLIC_URL)
    assert verified.cert_id == cert["cert_id"]
    r = http.post(f"{b}/api/certificates/{cert['cert_id']}/revoke", json={"reason": "scale-out"})
    assert r.status_code == 200 and r.json()["status"] == "revoked"
    assert plain_session().get(f"{a}/api/certificates/{cert['cert_id']}").json()["status"] == (
        "revoked"
    )
    # Tenancy holds across processes too.
    bob = _client(deployment["other_key"])
    assert bob.get(f"{a}/api/audit").json()["total"] == 0


def _status(url: str, cert: dict[str, Any], jwks_from: list[str]) -> int:
    """The certificate's bit in the status list ``url`` serves, the list verified
    against the JWKS of every instance in ``jwks_from``."""
    ref = verify_certificate(cert["token"], _jwks(url), issuer=PUBLIC_URL).claims.status
    assert ref is not None and ref.uri.startswith(f"{PUBLIC_URL}/status/")
    list_id = ref.uri.rsplit("/", 1)[1]
    r = plain_session().get(f"{url}/status/{list_id}")
    assert r.status_code == 200 and r.headers["content-type"] == "application/statuslist+jwt"
    bits = {
        verify_status_list(r.text, _jwks(other), issuer=PUBLIC_URL, uri=ref.uri).get(ref.idx)
        for other in jwks_from
    }
    assert len(bits) == 1
    return bits.pop()


def test_a_revocation_on_one_shows_at_once_on_the_others_page_and_status_list(
    deployment: dict[str, Any],
) -> None:
    a, b = deployment["urls"]
    http = _client(deployment["key"])
    for issuer_url, revoker, viewer in ((a, a, b), (b, b, a)):
        cert = _issue(http, issuer_url)
        page = plain_session().get(f"{viewer}/cert/{cert['cert_id']}")
        assert page.status_code == 200
        assert 'id="status" class="status status-valid">valid<' in page.text
        assert _status(viewer, cert, [a, b]) == STATUS_VALID
        r = http.post(
            f"{revoker}/api/certificates/{cert['cert_id']}/revoke",
            json={"reason": "laptop stolen"},
        )
        assert r.status_code == 200, r.text
        # The very next request to the other instance: no cache, no delay.
        page = plain_session().get(f"{viewer}/cert/{cert['cert_id']}")
        assert 'id="status" class="status status-revoked">revoked<' in page.text
        assert "laptop stolen" in page.text
        assert page.headers["Cache-Control"] == "no-store"
        assert _status(viewer, cert, [a, b]) == STATUS_INVALID
        assert _status(revoker, cert, [a, b]) == STATUS_INVALID


def test_a_session_is_redeemable_once_on_either_process(deployment: dict[str, Any]) -> None:
    a, b = deployment["urls"]
    http = _client(deployment["key"])
    sid = _session(http, a)
    first = http.post(f"{b}/api/generate-certificate", json={"generation_session_id": sid})
    assert first.status_code == 201
    for url in (a, b):
        # An identical retry on either process: the same certificate.
        r = http.post(f"{url}/api/generate-certificate", json={"generation_session_id": sid})
        assert (r.status_code, r.json()["cert_id"]) == (201, first.json()["cert_id"])
        # A second use: refused.
        r = http.post(
            f"{url}/api/generate-certificate", json={"generation_session_id": sid, "label": "x"}
        )
        assert (r.status_code, r.json()["code"]) == (409, "session_already_used")


def test_racing_both_processes_for_one_session_makes_one_certificate(
    deployment: dict[str, Any],
) -> None:
    a, b = deployment["urls"]
    key = deployment["key"]
    http = _client(key)

    def redeem(job: tuple[str, str, dict[str, Any]]) -> tuple[int, str | None]:
        url, sid, extra = job
        r = _client(key).post(
            f"{url}/api/generate-certificate", json={"generation_session_id": sid, **extra}
        )
        return r.status_code, r.json().get("cert_id")

    sessions = []
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        for n in range(4):
            # Different redemptions (labels) of one session on both: one certificate.
            sid = _session(http, (a, b)[n % 2])
            sessions.append(sid)
            jobs = [(u, sid, {"label": f"l{i}"}) for i, u in enumerate([a, b] * 4)]
            codes = sorted(code for code, _ in pool.map(redeem, jobs))
            assert codes == [201] + [409] * 7
            # The same redemption sent to both at once: one certificate, answered to both.
            sid = _session(http, (b, a)[n % 2])
            sessions.append(sid)
            answers = list(pool.map(redeem, [(u, sid, {}) for u in [a, b] * 4]))
            assert {code for code, _ in answers} == {201}, answers
            assert len({cert_id for _, cert_id in answers}) == 1
    # What the database holds: one certificate per session, each redeemed once.
    rows = _sql(deployment["database_url"], "SELECT session_jti FROM certificates")
    assert len(rows) == len({jti for (jti,) in rows})
    assert set(sessions) and all(_jti(sid) in {jti for (jti,) in rows} for sid in sessions)


def test_an_api_key_revoked_on_one_is_refused_by_the_other(deployment: dict[str, Any]) -> None:
    """Each instance has its own state directory: nothing but the database tells an
    instance that a key it is using this very moment was revoked on another machine."""
    a, b = deployment["urls"]
    deployed: Machines = deployment["machines"]
    admin = deployment["admin"]
    created = admin.create_api_key("pg-dave", rate_limit=100000)
    office, laptop, phone = "198.51.100.7", "203.0.113.10", "203.0.113.11"
    sid = _session(_client(created.key, laptop), a)
    colleague = _client(admin.create_api_key("pg-heidi", rate_limit=100000).key, office)
    assert [colleague.get(f"{url}/api/audit").status_code for url in (a, b)] == [200, 200]
    revoking = threading.Event()
    admitted: list[int] = []

    def use_the_key() -> None:
        # Both instances keep answering for the key until the revocation is done:
        # whatever an instance could remember of it is as fresh as can be.
        http = _client(created.key, laptop)
        while not revoking.is_set():
            for url in (a, b):
                admitted.append(http.get(f"{url}/api/audit").status_code)

    user = threading.Thread(target=use_the_key)
    user.start()
    try:
        # revoke-key on machine A (its own state directory, as an operator there would).
        revoked = deployed.cli(
            "revoke-key", created.prefix, "--json", state_dir=deployed.processes[0].state_dir
        )
    finally:
        revoking.set()
        user.join()
    assert json.loads(revoked.stdout)["revoked_at"] and 200 in admitted
    http = _client(created.key, phone)
    for url in (b, a):  # the very next request, on either: refused
        r = http.get(f"{url}/api/audit")
        assert (r.status_code, r.json()["code"]) == (401, "unauthenticated"), r.text
        r = http.post(f"{url}/api/generate-certificate", json={"generation_session_id": sid})
        assert r.status_code == 401, r.text

    # The revoked key sprayed from the office: each instance refuses the address before
    # any database work once 30 failures a minute came from it (a limit per process),
    # but not a colleague's key that instance has seen good.
    sprayer = _client(created.key, office)
    for url in (a, b):
        codes: list[int] = []
        while 429 not in codes and len(codes) < 60:
            codes.append(sprayer.get(f"{url}/api/audit").status_code)
        assert codes[-1] == 429 and set(codes[:-1]) == {401} and len(codes) > 30, codes
        assert colleague.get(f"{url}/api/audit").status_code == 200
        stranger = _client(admin.create_api_key(f"pg-new-{url[-5:]}").key, office)
        r = stranger.get(f"{url}/api/audit")
        assert (r.status_code, r.json()["code"]) == (429, "rate_limited")


def _left(response: requests.Response, policy: str) -> int:
    for item in response.headers["RateLimit"].split(","):
        name, _, params = item.strip().partition(";")
        if name == f'"{policy}"':
            return int(dict(p.split("=") for p in params.split(";"))["r"])
    raise AssertionError(f"no {policy} in {response.headers['RateLimit']!r}")


def test_rate_limits_are_shared_between_processes(deployment: dict[str, Any]) -> None:
    a, b = deployment["urls"]
    # A user's key (default limits: a burst of 5, then 1/s).
    http = _client(deployment["limited_key"])
    codes = [http.get(f"{url}/api/audit").status_code for url in (a, b) * 4]
    # Per-process buckets would admit all 8 (4 each); one shared bucket admits
    # the burst of 5 (6 if a second passed meanwhile) and refuses the rest.
    assert codes.count(200) in (5, 6) and 429 in codes[5:], codes
    assert set(codes) == {200, 429}

    # An automation key (20 per minute, leased to each process in blocks): 20 in all.
    http = _client(deployment["new_key"]("pg-erin", rate_limit=20))
    answers = [http.get(f"{url}/api/audit") for url in (a, b) * 20]
    admitted = [r for r in answers if r.status_code == 200]
    # Per-process buckets would admit all 40; a minute boundary crossed during the
    # loop may let one more in (the sliding window's weight of the past minute).
    assert len(admitted) in (20, 21), [r.status_code for r in answers]
    assert {r.status_code for r in answers} == {200, 429}
    assert {r.url.split("/api")[0] for r in admitted} == {a, b}
    refused = answers[-1]
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1

    # Generation attempts per client IP (10 per hour, keys without their own rate),
    # whoever asks and whichever instance answers.
    frank, grace = (_client(deployment["new_key"](u)) for u in ("pg-frank", "pg-grace"))

    def batch(http: requests.Session, url: str, count: int) -> requests.Response:
        body = with_commitments(
            "/api/generate-batch", {"compliance_standard": "soc2", "count": count}
        )
        return http.post(f"{url}/api/generate-batch", json=body)

    first = batch(frank, a, 6)
    assert first.status_code == 200, first.text
    assert _left(first, "generation-ip") == 4
    refused = batch(grace, b, 5)  # another user, the other instance: 4 left, not 10
    assert refused.status_code == 429 and "per IP address" in refused.json()["message"]
    second = batch(grace, b, 4)
    assert second.status_code == 200 and _left(second, "generation-ip") == 0
    assert batch(frank, a, 1).status_code == 429


def test_the_monthly_quota_is_shared(deployment: dict[str, Any]) -> None:
    a, b = deployment["urls"]
    http = _client(deployment["new_key"]("pg-quota", plan="foundation", rate_limit=1000))
    for url in (a, b, a):
        _issue(http, url)
    for url in (b, a):
        sid = _session(http, url)
        r = http.post(f"{url}/api/generate-certificate", json={"generation_session_id": sid})
        assert (r.status_code, r.json()["code"]) == (402, "quota_exceeded")
        assert "plan foundation allows 3 certificates per calendar month" in r.json()["message"]
    # A session opened on one instance is refused over the quota on the other as well.
    sid = _session(http, a)
    r = http.post(f"{b}/api/generate-certificate", json={"generation_session_id": sid})
    assert (r.status_code, r.json()["code"]) == (402, "quota_exceeded")
    for url in (a, b):
        usage = http.get(f"{url}/api/audit").json()["usage"]
        assert (usage["plan"], usage["used"], usage["remaining"]) == ("foundation", 3, 0)


def test_status_list_indexes_never_collide(deployment: dict[str, Any]) -> None:
    """Many concurrent issuances on both: every index once, and the only unused ones
    are the rest of the blocks of 256 each instance reserves (docs/deployment.md)."""
    a, b = deployment["urls"]
    database_url = deployment["database_url"]
    counter = "SELECT next_idx FROM status_list_counter"
    before = _sql(database_url, counter)[0][0]

    def issue(url: str) -> tuple[str, int]:
        cert = _issue(_client(deployment["key"]), url)
        ref = verify_certificate(cert["token"], _jwks(a), issuer=PUBLIC_URL).claims.status
        assert ref is not None
        list_id = int(ref.uri.rsplit("/", 1)[1])
        return url, list_id * 65536 + ref.idx

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        issued = list(pool.map(issue, [a, b] * 30))
    after = _sql(database_url, counter)[0][0]
    stored = [r[0] for r in _sql(database_url, "SELECT status_list_idx FROM certificates")]
    assert len(stored) == len(set(stored))  # no index twice, in the whole database
    ours = [idx for _, idx in issued]
    assert len(set(ours)) == len(ours) and set(ours) <= set(stored)
    # Blocks of 256 are each one instance's: none serves indexes of both.
    blocks = {url: {idx // 256 for u, idx in issued if u == url} for url in (a, b)}
    assert not blocks[a] & blocks[b], blocks
    # Every block reserved during the run holds certificates of the run (none was
    # reserved in vain); the reservations are whole blocks.
    assert before % 256 == 0 and after % 256 == 0
    assert set(range(before // 256, after // 256)) <= blocks[a] | blocks[b]
    assert all(idx < after for idx in ours)


def test_key_rotation_through_the_cli_reaches_both_processes(deployment: dict[str, Any]) -> None:
    a, b = deployment["urls"]
    deployed: Machines = deployment["machines"]
    http = _client(deployment["key"])
    old = _issue(http, a)
    # From the admin machine, whose <state-dir>/keys is the same shared volume.
    rotated = deployed.cli("rotate-keys", "--json")
    new_kid = json.loads(rotated.stdout)["active"]
    assert (Path(deployed.admin_state) / "keys" / f"{new_kid}.pem").is_file()
    for url in (a, b):
        jwks = _jwks(url)
        assert new_kid in [k["kid"] for k in jwks["keys"]]
        verify_certificate(old["token"], jwks, issuer=PUBLIC_URL)
        # Whichever key each instance signs with now, the other's JWKS verifies it.
        fresh = _issue(http, url)
        for other in (a, b):
            verify_certificate(fresh["token"], _jwks(other), issuer=PUBLIC_URL)


def test_both_processes_append_to_one_transparency_log(deployment: dict[str, Any]) -> None:
    """Concurrent issuance and revocation through both processes: one gapless log, one key,
    the same checkpoint from each, every certificate a leaf proven in it."""
    from passgeni_core.crypto import (
        NoteVerifier,
        check_inclusion,
        decode_proof,
        issuance_leaf,
        open_checkpoint,
    )

    a, b = deployment["urls"]

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        certs = list(pool.map(lambda url: _issue(_client(deployment["key"]), url), [a, b] * 12))
    http = _client(deployment["key"])
    for cert in certs[:4]:
        r = http.post(f"{b}/api/certificates/{cert['cert_id']}/revoke", json={"reason": "pg"})
        assert r.status_code == 200

    keys = {plain_session().get(f"{url}/.well-known/log-key").text for url in (a, b)}
    assert len(keys) == 1
    key = NoteVerifier.from_key(keys.pop())
    notes = {plain_session().get(f"{url}/log/checkpoint").text for url in (a, b)}
    assert len(notes) == 1  # the same tree, signed by the same key, from either process
    checkpoint = open_checkpoint(notes.pop(), key, origin=key.name)
    indexes = [
        r[0] for r in _sql(deployment["database_url"], "SELECT idx FROM log_leaves ORDER BY idx")
    ]
    assert indexes == list(range(checkpoint.size))
    for n, cert in enumerate(certs):
        record = plain_session().get(f"{(a, b)[n % 2]}/api/certificates/{cert['cert_id']}").json()
        index = record["log"]["index"]
        if n < 4:
            assert record["log"]["revocation_index"] > index
        proof = (
            plain_session()
            .get(f"{(b, a)[n % 2]}/log/proof/inclusion/{index}", params={"size": checkpoint.size})
            .json()
        )
        check_inclusion(issuance_leaf(cert["token"]), index, checkpoint, decode_proof(proof))
