"""Plans and quotas (issue #19 item 3), against the served authority: the seed's plans
as data, ``create-key --plan``, ``set-plan``, 402 ``quota_exceeded`` saying the plan, the
use and the reset, a batch refused whole without being charged, usage in ``/api/audit``
and ``passgeni authority usage``, a team plan counting the team, the calendar month."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from typing import Any

from tests.support import REPO_ROOT
from tests.support.authority import Server, Tenant


def _tenant(authority: Server, plan: str | None, *, team: str | None = None) -> Tenant:
    user = f"p-{uuid.uuid4().hex[:8]}"
    created = authority.service.create_api_key(user, team=team, rate_limit=10_000, plan=plan)
    return Tenant(
        server=authority,
        user=user,
        key=created.key,
        ip=f"10.77.{uuid.uuid4().int % 250}.1",
        team=team,
    )


def _issue(t: Tenant) -> Any:
    sid = t.session()
    return t.post("/api/generate-certificate", {"generation_session_id": sid})


def test_the_seed_plans_are_data(authority: Server) -> None:
    plans = {p.name: p for p in authority.service.list_plans()}
    assert plans["foundation"].monthly_certificates == 3
    assert plans["assurance"].monthly_certificates is None
    assert plans["authority"].monthly_certificates is None and plans["authority"].team_audit


def test_foundation_allows_three_certificates_a_month(authority: Server) -> None:
    t = _tenant(authority, "foundation")
    authority.clock.align(60)
    for _ in range(3):
        assert _issue(t).status_code == 201
    r = _issue(t)
    assert (r.status_code, r.json()["code"]) == (402, "quota_exceeded")
    message = r.json()["message"]
    assert "plan foundation allows 3 certificates per calendar month" in message
    assert "has used 3" in message and "resets at" in message
    usage = t.get("/api/audit").json()["usage"]
    assert usage["plan"] == "foundation" and usage["used"] == 3 and usage["remaining"] == 0
    assert usage["limit"] == 3 and usage["resets_at"].endswith("-01T00:00:00Z")
    # Upgraded: unlimited at once; back on foundation, the month's certificates count.
    authority.service.set_plan(t.user, "assurance")
    assert _issue(t).status_code == 201
    authority.service.set_plan(t.user, "foundation")
    assert _issue(t).status_code == 402
    assert t.get("/api/audit").json()["usage"]["used"] == 4


def test_a_batch_over_the_quota_is_refused_whole_and_charges_nothing(authority: Server) -> None:
    t = _tenant(authority, "foundation")
    sessions = [t.session() for _ in range(4)]
    items = [{"generation_session_id": s} for s in sessions]
    r = t.post("/api/generate-certificates", {"items": items})
    assert (r.status_code, r.json()["code"]) == (402, "quota_exceeded")
    assert "asked for 4 more" in r.json()["message"]
    r = t.post("/api/generate-certificates", {"items": items[:3]})
    assert r.status_code == 201
    assert all("cert_id" in c for c in r.json()["certificates"])
    assert t.get("/api/audit").json()["usage"]["used"] == 3


def test_a_session_already_redeemed_is_not_charged(authority: Server) -> None:
    t = _tenant(authority, "foundation")
    used = t.session()
    assert t.post("/api/generate-certificate", {"generation_session_id": used}).status_code == 201
    fresh = t.session()
    # Another label: a second use, refused (an identical retry would be answered
    # with the first certificate, stored once and charged once too).
    items = [{"generation_session_id": used, "label": "again"}, {"generation_session_id": fresh}]
    r = t.post("/api/generate-certificates", {"items": items})
    assert r.status_code == 201
    out = r.json()["certificates"]
    assert out[0]["error"]["code"] == "session_already_used" and "cert_id" in out[1]
    # Both were charged when planned; the one not stored was given back.
    assert _issue(t).status_code == 201
    assert _issue(t).status_code == 402


def test_a_team_plan_counts_the_whole_team(authority: Server) -> None:
    team = f"t-{uuid.uuid4().hex[:6]}"
    a = _tenant(authority, "foundation", team=team)  # the team's plan (a team key)
    b = _tenant(authority, None, team=team)
    assert _issue(a).status_code == 201
    assert _issue(b).status_code == 201
    assert _issue(b).status_code == 201
    r = _issue(a)
    assert r.status_code == 402 and f"team {team} has used 3" in r.json()["message"]
    use = authority.service.usage(subject=team, kind="team")
    assert (use["plan"], use["used"], use["remaining"]) == ("foundation", 3, 0)


def test_an_edited_plan_and_the_next_month(authority: Server) -> None:
    authority.service.define_plan("tiny", monthly_certificates=1, description="one a month")
    t = _tenant(authority, "tiny")
    assert _issue(t).status_code == 201
    assert _issue(t).status_code == 402
    authority.service.define_plan("tiny", monthly_certificates=2)
    assert _issue(t).status_code == 201
    start = authority.clock()
    days = 32 - start.day  # into next month whatever day this is
    authority.clock.advance(days * 86400)
    assert _issue(t).status_code == 201  # a new calendar month
    assert t.get("/api/audit").json()["usage"]["used"] == 1


def test_quota_refusals_are_events_and_metrics(authority: Server) -> None:
    t = _tenant(authority, "foundation")
    for _ in range(3):
        assert _issue(t).status_code == 201
    for _ in range(5):
        assert _issue(t).status_code == 402
    authority.service.run_maintenance()
    operator = authority.service.create_api_key(f"op-{uuid.uuid4().hex[:6]}", operator=True)
    op = Tenant(server=authority, user="op", key=operator.key, ip="10.250.0.2")
    events = op.get("/api/events", params={"type": "quota_exceeded", "user": t.user}).json()
    counted = sum(e["detail"]["count"] for e in events["items"])
    assert counted == 5 and len(events["items"]) <= 2  # aggregated
    assert events["items"][0]["detail"]["plan"] == "foundation"
    metrics = op.get("/metrics").text
    assert 'passgeni_quota_refusals_total{plan="foundation"}' in metrics


def test_the_plan_commands(tmp_path: Any) -> None:
    # A state directory of its own: the commands open the database themselves. (The
    # session's server shares its process with tests that read its database files with
    # plain open(), which drops that process's POSIX locks on them; another process
    # closing the database then would reset the WAL under the server.)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PASSGENI_")}
    state = ["--state-dir", str(tmp_path / "state")]

    def run(*args: str) -> str:
        return subprocess.run(
            [sys.executable, "-m", "passgeni_authority", *args, *state],
            capture_output=True,
            text=True,
            env=env,
            cwd=REPO_ROOT,
            timeout=120,
            check=True,
        ).stdout

    user = f"cli-{uuid.uuid4().hex[:6]}"
    created = json.loads(run("create-key", "--user", user, "--plan", "foundation", "--json"))
    assert created["api_key"]
    use = json.loads(run("usage", user, "--json"))
    assert (use["plan"], use["used"], use["limit"]) == ("foundation", 0, 3)
    assert "plan foundation, 0 of 3 certificates" in run("usage", user)
    assert "plan assurance (was foundation)" in run("set-plan", user, "assurance")
    plans = {p["name"]: p for p in json.loads(run("plans", "--json"))["plans"]}
    assert plans["foundation"]["monthly_certificates"] == 3
    run("plan", "pro", "--monthly-certificates", "100", "--description", "a hundred")
    assert json.loads(run("plans", "--json"))["plans"][-1]["name"] in {"pro", "tiny"}
    bad = subprocess.run(
        [sys.executable, "-m", "passgeni_authority", "set-plan", user, "no-such-plan", *state],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO_ROOT,
        timeout=120,
    )
    assert bad.returncode != 0 and "no plan 'no-such-plan'" in bad.stderr
    assert "Traceback" not in bad.stderr
