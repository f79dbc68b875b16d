"""The coverage dashboard (``/dashboard``) in real headless Chromium, over a served authority.

One authority of its own (its own clock, so certificates can be made to expire), a team
whose five certificates fall in every bucket (valid, expiring within 30 and 60 days,
expired, revoked), a second team it must not see, an operator who sees both, and a
submitted scan with a drifted credential. Each view is loaded at desktop and mobile
widths, screenshotted under ``build/screenshots/dashboard/`` and read as rendered;
sign-in, the cookie's flags, CSRF, sign-out, CSV export and accessibility (axe-core,
no serious violation) are checked as a browser and a plain HTTP client see them.
"""

from __future__ import annotations

import csv
import io
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from passgeni_authority import AuthoritySettings, RateLimits
from passgeni_authority.embedded import EmbeddedAuthority
from passgeni_core.client import ScanFindingBody, ScanSubmissionBody
from tests.support import REPO_ROOT, Chromium
from tests.support.authority import FakeClock, Server, Tenant, plain_session
from tests.support.axe import axe_source, serious_violations
from tests.support.browser import DESKTOP, MOBILE, BrowserPage

SHOTS = REPO_ROOT / "build" / "screenshots" / "dashboard"
VIEWPORTS = {"desktop": DESKTOP, "mobile": MOBILE}
VIEWS = {
    "overview": "/dashboard",
    "certificates": "/dashboard/certificates",
    "stores": "/dashboard/stores",
    "coverage": "/dashboard/coverage",
    "anomalies": "/dashboard/anomalies",
}


@dataclass
class World:
    server: Server
    team: Tenant
    other: Tenant
    operator_key: str
    certs: dict[str, str]  # bucket -> cert_id


def _tenant(server: Server, team: str, *, operator: bool = False) -> Tenant:
    user = f"u-{uuid.uuid4().hex[:8]}"
    created = server.service.create_api_key(
        user, team=None if operator else team, rate_limit=100_000, operator=operator
    )
    return Tenant(server=server, user=user, key=created.key, ip="10.9.0.1", team=team)


def _issue(t: Tenant, standard: str, system: str, path: str, label: str) -> str:
    cert = t.certificate(standard, target={"system": system, "path": path}, label=label)
    cert_id: str = cert["cert_id"]
    return cert_id


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    state_dir = tmp_path_factory.mktemp("dashboard")
    clock = FakeClock()
    settings = AuthoritySettings(
        state_dir=state_dir,
        clock=clock,
        fips_flag_path=state_dir / "no-fips-flag",
        rate_limits=RateLimits(),
        trusted_proxies=("127.0.0.1",),
        anomaly_threshold_24h=1,
    )
    with EmbeddedAuthority(settings=settings, issuer_is_base_url=True) as embedded:
        server = Server(embedded=embedded, clock=clock, state_dir=state_dir)
        team = _tenant(server, f"blue-{uuid.uuid4().hex[:6]}")
        other = _tenant(server, f"red-{uuid.uuid4().hex[:6]}")
        operator = _tenant(server, "", operator=True)
        certs = {"expired": _issue(team, "soc2", "vault", "secret/old#password", "old app")}
        clock.advance(timedelta(days=10).total_seconds())
        certs["expiring_30"] = _issue(team, "pci-dss", "aws-sm", "prod/api#token", "api")
        clock.advance(timedelta(days=30).total_seconds())
        certs["expiring_60"] = _issue(team, "hipaa", "vault", "secret/app/db#password", "db")
        clock.advance(timedelta(days=326).total_seconds())
        certs["valid"] = _issue(team, "soc2", "k8s", "payments/web#password", "web")
        certs["revoked"] = _issue(team, "iso-27001", "vault", "secret/ex#password", "ex")
        response = team.post(f"/api/certificates/{certs['revoked']}/revoke", {"reason": "left"})
        assert response.status_code == 200, response.text
        certs["other"] = _issue(other, "soc2", "vault", "secret/red#password", "red only")
        scan = ScanSubmissionBody(
            credentials=[
                ScanFindingBody(
                    uri="k8s://payments/web#password", status="valid", cert_id=certs["valid"]
                ),
                ScanFindingBody(
                    uri="vault://secret/app/db#password",
                    status="drifted",
                    reasons=["value_changed"],
                    cert_id=certs["expiring_60"],
                ),
                ScanFindingBody(
                    uri="vault://secret/manual#password",
                    status="no_certificate",
                    reasons=["no_references"],
                ),
            ]
        )
        with team_client(team) as client:
            receipt = client.submit_scan(scan)
        assert (receipt.credentials, receipt.failing) == (3, 2)
        yield World(server, team, other, operator.key, certs)


def team_client(t: Tenant) -> Any:
    from passgeni_core import AuthorityClient

    return AuthorityClient(t.server.url, api_key=t.key, issuer=t.server.url)


def _sign_in(page: BrowserPage, world: World, key: str) -> None:
    page.goto(f"{world.server.url}/dashboard")
    assert page.evaluate("location.pathname") == "/dashboard/sign-in"
    page.fill("#api_key", key)
    page.navigate_by("button[type=submit]", "/dashboard")


def _http_sign_in(url: str, key: str) -> Any:
    http = plain_session()
    form = http.get(f"{url}/dashboard/sign-in", timeout=10)
    csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert csrf is not None
    answer = http.post(
        f"{url}/dashboard/sign-in",
        data={"csrf": csrf.group(1), "api_key": key},
        allow_redirects=False,
        timeout=10,
    )
    assert answer.status_code == 303, answer.text
    return http


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_sign_in_every_view_and_sign_out_in_a_browser(
    chromium: Chromium, world: World, viewport: str
) -> None:
    c = world.certs
    with BrowserPage.open(chromium) as page:
        page.viewport(*VIEWPORTS[viewport])
        _sign_in(page, world, world.team.key)
        # The session cookie: HttpOnly (no script reads it), SameSite=Strict, the dashboard's path.
        (cookie,) = [k for k in page.cookies() if k["name"] == "passgeni_dashboard"]
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
        assert cookie["path"] == "/dashboard" and not cookie["secure"]  # plain http here
        assert "passgeni_dashboard" not in page.evaluate("document.cookie")
        texts = {}
        for name, path in VIEWS.items():
            page.goto(f"{world.server.url}{path}")
            page.screenshot(SHOTS / f"{name}-{viewport}.png")
            texts[name] = page.text()
        # The key left the page once: in the sign-in form's body, to this authority.
        sent = [r for r in page.requests if r.carries(world.team.key)]
        assert [(r.method, r.url) for r in sent] == [
            ("POST", f"{world.server.url}/dashboard/sign-in")
        ]
        page.navigate_by("form.signout button", "/dashboard/sign-in")
        assert "Sign in with an API key" in page.text()
        assert not [k for k in page.cookies() if k["name"] == "passgeni_dashboard"]
        page.goto(f"{world.server.url}/dashboard/coverage")
        assert page.evaluate("location.pathname") == "/dashboard/sign-in"

    overview = texts["overview"]
    assert f"team {world.team.team}" in overview
    assert re.search(r"5\s+certificates", overview)
    assert re.search(r"1\s+valid", overview) and re.search(r"1\s+revoked", overview)
    assert re.search(r"2\s+expiring within 90 days", overview)
    assert re.search(r"2\s+of 3 scanned credentials without a good certificate", overview)
    assert "vault://secret/app/db#password" in overview and "drifted" in overview
    certificates = texts["certificates"]
    for bucket in ("valid", "expiring_30", "expiring_60", "expired", "revoked"):
        assert c[bucket] in certificates
    assert c["other"] not in certificates  # another team's
    assert "expiring within 30 days" in certificates and "expiring within 60 days" in certificates
    assert "5 of 5 certificates" in certificates
    stores = texts["stores"]
    assert all(s in stores for s in ("vault", "aws-sm", "k8s", "secret/app/db#password"))
    coverage = texts["coverage"]
    assert "3 credential(s) found by submitted scans; 2 without a good certificate" in coverage
    assert "no certificate" in coverage and "value changed" in coverage
    anomalies = texts["anomalies"]
    assert "vault://secret/app/db#password" in anomalies.split("Issuance anomalies")[0]
    assert world.team.user in anomalies.split("Issuance anomalies")[1]


def test_rows_link_to_certificate_pages_and_filters_are_server_side(
    chromium: Chromium, world: World
) -> None:
    with BrowserPage.open(chromium) as page:
        _sign_in(page, world, world.team.key)
        page.goto(f"{world.server.url}/dashboard/certificates?status=expiring")
        text = page.text()
        assert "2 of 5 certificates" in text
        assert world.certs["expiring_30"] in text and world.certs["valid"] not in text
        link = f"a[href='/cert/{world.certs['expiring_30']}']"
        page.navigate_by(link, f"/cert/{world.certs['expiring_30']}")
        assert f"PassGeni certificate {world.certs['expiring_30']}" in page.evaluate(
            "document.title"
        )
        page.goto(f"{world.server.url}/dashboard/certificates?standard=SOC2&system=k8s")
        assert "1 of 5 certificates" in page.text()
        page.goto(f"{world.server.url}/dashboard/coverage?status=gap")
        text = page.text()
        assert "vault://secret/manual#password" in text and "k8s://payments" not in text


def test_pages_of_fifty_server_side(world: World) -> None:
    big = _tenant(world.server, f"green-{uuid.uuid4().hex[:6]}")
    opened = big.post("/api/generate-batch", {"compliance_standard": "soc2", "count": 55})
    assert opened.status_code == 200, opened.text
    items = [
        {"generation_session_id": sid, "target": {"system": "vault", "path": f"p/{i:02d}"}}
        for i, sid in enumerate(opened.json()["generation_session_ids"])
    ]
    assert big.post("/api/generate-certificates", {"items": items}).status_code == 201
    http = _http_sign_in(world.server.url, big.key)
    first = http.get(f"{world.server.url}/dashboard/certificates?system=vault").text
    second = http.get(f"{world.server.url}/dashboard/certificates?system=vault&page=2").text
    assert "55 of 55 certificates" in first and "Page 1 of 2" in first
    assert 'href="/dashboard/certificates?system=vault&amp;page=2"' in first
    assert first.count('<a href="/cert/') == 50 and second.count('<a href="/cert/') == 5
    assert "Page 2 of 2" in second and 'rel="prev"' in second and 'rel="next"' not in second
    # Beyond the last page: the last page.
    assert "Page 2 of 2" in http.get(f"{world.server.url}/dashboard/certificates?page=99").text
    stores = http.get(f"{world.server.url}/dashboard/stores?page=2").text
    assert "Targets (55)" in stores and stores.count("<code>p/") == 5


def test_operator_sees_every_team(chromium: Chromium, world: World) -> None:
    with BrowserPage.open(chromium) as page:
        _sign_in(page, world, world.operator_key)
        page.goto(f"{world.server.url}/dashboard/certificates")
        assert "operator: every team" in page.text()
        shown = re.search(r"(\d+) of (\d+) certificates", page.text())
        assert shown is not None and shown[1] == shown[2] and int(shown[1]) >= 6
        for cert_id in (world.certs["other"], world.certs["valid"]):
            page.goto(f"{world.server.url}/dashboard/certificates?q={cert_id}")
            assert cert_id in page.text() and f"1 of {shown[2]} certificates" in page.text()
    # The team's own dashboard does not show the other team's certificate, even searched for.
    http = _http_sign_in(world.server.url, world.team.key)
    found = http.get(f"{world.server.url}/dashboard/certificates?q={world.certs['other']}").text
    assert "0 of 5 certificates" in found


def test_csv_exports_the_current_view(world: World) -> None:
    http = _http_sign_in(world.server.url, world.team.key)
    answer = http.get(f"{world.server.url}/dashboard/certificates.csv?status=revoked", timeout=10)
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    assert [r["cert_id"] for r in rows] == [world.certs["revoked"]]
    assert rows[0]["status"] == "revoked" and rows[0]["system"] == "vault"
    assert rows[0]["cert_url"] == f"{world.server.url}/cert/{world.certs['revoked']}"
    coverage = list(
        csv.DictReader(io.StringIO(http.get(f"{world.server.url}/dashboard/coverage.csv").text))
    )
    assert {r["uri"]: r["covered"] for r in coverage} == {
        "k8s://payments/web#password": "yes",
        "vault://secret/app/db#password": "no",
        "vault://secret/manual#password": "no",
    }


def test_oscal_exports_the_current_view_and_trestle_validates_it(
    world: World, tmp_path: Path
) -> None:
    from tests.support.oscal import findings as _findings, validate as _validate

    http = _http_sign_in(world.server.url, world.team.key)
    answer = http.get(f"{world.server.url}/dashboard/coverage.oscal.json", timeout=30)
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/json"
    assert "coverage.oscal.json" in answer.headers["content-disposition"]
    document = answer.json()
    observed = {
        o["subjects"][0]["title"]: o["title"]
        for o in document["assessment-results"]["results"][0]["observations"]
    }
    # The same three credentials the CSV lists, each with its status.
    assert set(observed) == {
        "k8s://payments/web#password",
        "vault://secret/app/db#password",
        "vault://secret/manual#password",
    }, observed
    # Two credentials fall short: no control they are in scope of is satisfied.
    states = {f["target"]["status"]["state"] for f in _findings(document).values()}
    assert states == {"not-satisfied"}, states
    (tmp_path / "coverage.json").write_bytes(answer.content)
    done = _validate(tmp_path / "coverage.json", tmp_path / "ws", name="coverage")
    assert done.returncode == 0, done.stdout + done.stderr
    # The certificates view, filtered as shown: only the revoked one, as history.
    answer = http.get(
        f"{world.server.url}/dashboard/certificates.oscal.json?status=revoked", timeout=30
    )
    assert answer.status_code == 200
    text = answer.text
    assert world.certs["revoked"] in text and world.certs["valid"] not in text
    (tmp_path / "certs.json").write_bytes(answer.content)
    done = _validate(tmp_path / "certs.json", tmp_path / "ws2", name="certs")
    assert done.returncode == 0, done.stdout + done.stderr


def test_forms_are_csrf_safe_and_sessions_end(world: World) -> None:
    url = world.server.url
    http = plain_session()
    form = http.get(f"{url}/dashboard/sign-in", timeout=10)
    assert form.status_code == 200
    # A wrong form token, a cross-site origin: refused, and no session.
    for data, headers in (
        ({"csrf": "forged", "api_key": world.team.key}, {}),
        (
            {
                "csrf": re.findall(r'name="csrf" value="([^"]+)"', form.text)[0],
                "api_key": world.team.key,
            },
            {"Origin": "https://evil.example"},
        ),
    ):
        answer = http.post(
            f"{url}/dashboard/sign-in", data=data, headers=headers, allow_redirects=False
        )
        assert answer.status_code == 403 and "passgeni_dashboard" not in answer.cookies
    # A wrong key: 401, said so, and the key is not echoed.
    fresh = plain_session()
    token = re.findall(r'name="csrf" value="([^"]+)"', fresh.get(f"{url}/dashboard/sign-in").text)[
        0
    ]
    answer = fresh.post(f"{url}/dashboard/sign-in", data={"csrf": token, "api_key": "pg_wrong_key"})
    assert answer.status_code == 401 and "Not signed in" in answer.text
    assert "pg_wrong_key" not in answer.text
    # Signed in: sign-out without the session's form token is refused.
    signed = _http_sign_in(url, world.team.key)
    assert signed.get(f"{url}/dashboard", allow_redirects=False).status_code == 200
    assert signed.post(f"{url}/dashboard/sign-out", data={"csrf": "x"}).status_code == 403
    # A revoked key ends its sessions at once.
    extra = _tenant(world.server, world.team.team or "")
    session = _http_sign_in(url, extra.key)
    assert session.get(f"{url}/dashboard", allow_redirects=False).status_code == 200
    world.server.service.revoke_api_key(extra.key.split("_")[1])
    assert session.get(f"{url}/dashboard", allow_redirects=False).status_code == 303
    # And a session expires after 30 minutes.
    later = _http_sign_in(url, world.team.key)
    world.server.clock.advance(31 * 60)
    assert later.get(f"{url}/dashboard", allow_redirects=False).status_code == 303


def test_the_cookie_is_secure_behind_https(tmp_path: Any) -> None:
    settings = AuthoritySettings(state_dir=tmp_path, public_url="https://dash.example")
    with EmbeddedAuthority(settings=settings) as embedded:
        key = embedded.service.create_api_key("sec").key
        http = plain_session()
        form = http.get(f"{embedded.base_url}/dashboard/sign-in")
        token = re.findall(r'name="csrf" value="([^"]+)"', form.text)[0]
        assert "Secure" in form.headers["set-cookie"]
        # A client keeps Secure cookies for HTTPS: the test, on plain http, hands it back.
        answer = plain_session().post(
            f"{embedded.base_url}/dashboard/sign-in",
            data={"csrf": token, "api_key": key},
            headers={"Cookie": f"passgeni_signin={form.cookies['passgeni_signin']}"},
            allow_redirects=False,
        )
        cookie = answer.headers["set-cookie"]
        assert "passgeni_dashboard=" in cookie
        for flag in ("HttpOnly", "Secure", "SameSite=strict", "Path=/dashboard"):
            assert flag in cookie, cookie


def test_scan_submissions_refuse_anything_but_references_and_statuses(world: World) -> None:
    for body, message in (
        (
            {"credentials": [{"uri": "vault://a#b", "status": "valid", "value": "x"}]},
            "unknown field",
        ),
        ({"credentials": [{"uri": "vault://a#b", "status": "fine"}]}, "status"),
        ({"credentials": "no"}, "credentials must be a list"),
        ({"credentials": [], "password": "x"}, "unknown field"),
    ):
        answer = world.team.post("/api/scans", body)
        assert answer.status_code == 400, answer.text
        assert message in answer.json()["message"]
    assert (
        plain_session().post(f"{world.server.url}/api/scans", json={"credentials": []}).status_code
        == 401
    )


@pytest.mark.parametrize(
    "path", [*VIEWS.values(), "/dashboard/sign-in", "/generate", "/generate/certified"]
)
def test_no_serious_accessibility_violation(chromium: Chromium, world: World, path: str) -> None:
    source = axe_source()
    with BrowserPage.open(chromium) as page:
        if path != "/dashboard/sign-in" and path.startswith("/dashboard"):
            _sign_in(page, world, world.team.key)
        page.goto(f"{world.server.url}{path}")
        assert serious_violations(page, source) == []


def test_the_views_on_postgresql(postgres: Any, tmp_path: Any) -> None:
    """The same SQL on PostgreSQL: buckets, filters, targets, coverage and CSV."""
    database_url = postgres.create_database(f"dashboard_{uuid.uuid4().hex[:8]}")
    settings = AuthoritySettings(
        state_dir=tmp_path, database_url=database_url, rate_limits=RateLimits.unlimited()
    )
    with EmbeddedAuthority(settings=settings, issuer_is_base_url=True) as embedded:
        server = Server(embedded=embedded, clock=FakeClock(), state_dir=tmp_path)
        team = _tenant(server, "pg-team")
        kept = _issue(team, "soc2", "vault", "secret/a#password", "a")
        gone = _issue(team, "pci-dss", "aws-sm", "prod/b#token", "b_%")
        assert team.post(f"/api/certificates/{gone}/revoke", {"reason": "x"}).status_code == 200
        with team_client(team) as client:
            client.submit_scan(
                ScanSubmissionBody(
                    credentials=[
                        ScanFindingBody(
                            uri="vault://secret/a#password", status="valid", cert_id=kept
                        ),
                        ScanFindingBody(
                            uri="aws-sm://prod/b#token", status="revoked", cert_id=gone
                        ),
                    ]
                )
            )
        url = embedded.base_url
        http = _http_sign_in(url, team.key)
        overview = http.get(f"{url}/dashboard").text
        assert "<strong>2</strong>certificates" in overview
        assert "<strong>1</strong>of 2 scanned credentials" in overview
        listed = http.get(f"{url}/dashboard/certificates?status=revoked&system=aws-sm").text
        assert "1 of 2 certificates" in listed and gone in listed and kept not in listed
        # LIKE wildcards in a search are literal.
        assert "1 of 2 certificates" in http.get(f"{url}/dashboard/certificates?q=b_%25").text
        assert "0 of 2 certificates" in http.get(f"{url}/dashboard/certificates?q=%25%25").text
        stores = http.get(f"{url}/dashboard/stores").text
        assert "Targets (2)" in stores and "prod/b#token" in stores
        coverage = http.get(f"{url}/dashboard/coverage?status=gap").text
        assert "aws-sm://prod/b#token" in coverage and "vault://secret/a" not in coverage
        rows = list(csv.DictReader(io.StringIO(http.get(f"{url}/dashboard/certificates.csv").text)))
        assert {r["cert_id"]: r["status"] for r in rows} == {kept: "valid", gone: "revoked"}
