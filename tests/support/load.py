"""Load, durability and crash run against real authority processes.

Run by ``python bench/load_authority.py`` (60 s per phase) and, with a short
bound, by ``tests/reliability/test_load_crash.py``.

Drives ``passgeni authority serve`` (uvicorn subprocesses) at its maximum
rate with ``wrk`` (Debian package; a Lua script runs the full flow:
``POST /api/generate`` then ``POST /api/generate-certificate`` with the
session it got) for a bounded time, on

* ``sqlite``: one process on a SQLite state directory (the embedded layout);
* ``postgres``: two processes sharing one PostgreSQL database (one ``wrk``
  per process).

Each backend gets two phases: a steady run (figures: requests/s, p50/p99,
errors, RSS at start and end) and a crash run (``kill -9`` of an authority
process in the middle of the load, restarted at once on the same port).

After each phase everything a client was told is checked (the Lua script
journals every answer): every ``cert_id`` answered is in the database, listed
in the audit, retrievable over HTTP, and its token verifies against the
JWKS (``passgeni_core.verify_certificate``); the database holds no
certificate that no client was answered for, except those whose redemption
was in flight when a connection was cut (the kill, or wrk stopping at the
end of the run), counted and bounded by the number of connections; zero 5xx.
After the crash: sessions redeemed (answered or not) cannot be redeemed
again, and sessions never redeemed can be redeemed exactly once. The
transparency log holds every stored certificate (so every answered one) in a
gapless log that extends the checkpoint taken before the phase
(``tests/support/load_log.py``).
"""

from __future__ import annotations

import base64
import contextlib
import json
import random
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
import sqlalchemy

from passgeni_core import verify_certificate
from tests.support.authority_processes import Deployment, _session, deployment
from tests.support.load_log import check_log, checkpoint_of
from tests.support.postgres import PostgresCluster
from tests.support.seeds import commitment

LUA = Path(__file__).resolve().parent / "load_authority.lua"


def find_wrk() -> str:
    found = shutil.which("wrk")
    if found is None:
        raise RuntimeError("wrk not found: apt-get install wrk (scripts/install-sysdeps.sh)")
    return found


# -- the journal ----------------------------------------------------------------------------------


def session_jti(sid: str) -> str:
    body = sid.split(".")[1]
    data = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    return str(data["jti"])


@dataclass
class Journal:
    generated: list[str] = field(default_factory=list)
    sent: list[str] = field(default_factory=list)
    answered: dict[str, str] = field(default_factory=dict)  # cert_id -> token
    errors: list[tuple[int, str]] = field(default_factory=list)

    @classmethod
    def read(cls, paths: list[Path]) -> Journal:
        out = cls()
        for path in paths:
            with path.open(encoding="utf-8", errors="replace") as fh:
                for line in fh:
                    kind, _, rest = line.rstrip("\n").partition(" ")
                    if kind == "G":
                        out.generated.append(rest)
                    elif kind == "S":
                        out.sent.append(rest)
                    elif kind == "C":
                        cert_id, _, token = rest.partition(" ")
                        out.answered[cert_id] = token
                    elif kind == "E":
                        status, _, body = rest.partition(" ")
                        out.errors.append((int(status), body[:300]))
        return out


# -- one phase ------------------------------------------------------------------------------------


@dataclass
class PhaseResult:
    name: str
    report: dict[str, Any]
    problems: list[str]


def _run_wrk(
    url: str, api_key: str, prefix: Path, *, duration: float, threads: int, connections: int
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            find_wrk(),
            f"-t{threads}",
            f"-c{connections}",
            f"-d{max(1, round(duration))}s",
            "--timeout",
            "30s",
            "-s",
            str(LUA),
            url,
            "--",
            str(prefix),
            api_key,
            commitment(),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _db_certificates(dep: Deployment) -> dict[str, tuple[str, str]]:
    """cert_id -> (session_jti, token) of the load user's certificates, read from the database."""
    engine = sqlalchemy.create_engine(dep.database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sqlalchemy.text(
                    "SELECT cert_id, session_jti, token FROM certificates WHERE owner_user_id = :u"
                ),
                {"u": dep.user},
            ).all()
    finally:
        engine.dispose()
    return {r[0]: (r[1], r[2]) for r in rows}


def _quiesce(dep: Deployment, *, settle: float = 0.5, limit: float = 60.0) -> None:
    """Wait until the authority has finished the requests wrk left in flight when it stopped
    (the server still commits them): the counts of certificates (a session is redeemed
    by its certificate's insert) and of usage events stay the same over three polls."""
    engine = sqlalchemy.create_engine(dep.database_url)
    query = sqlalchemy.text(
        "SELECT (SELECT count(*) FROM certificates WHERE owner_user_id = :u), "
        "(SELECT count(*) FROM usage_events WHERE user_id = :u)"
    )
    try:
        last: tuple[int, int] | None = None
        stable = 0
        deadline = time.monotonic() + limit
        while stable < 3 and time.monotonic() < deadline:
            with engine.connect() as conn:
                row = conn.execute(query, {"u": dep.user}).one()
            now = (int(row[0]), int(row[1]))
            stable = stable + 1 if now == last else 0
            last = now
            time.sleep(settle)
    finally:
        engine.dispose()


def _audit_ids(http: requests.Session, dep: Deployment) -> set[str]:
    base = dep.processes[-1].url
    ids: set[str] = set()
    page = 1
    while True:
        r = http.get(
            f"{base}/api/audit",
            params={"page": page, "page_size": 500},
            headers={"Authorization": f"Bearer {dep.api_key}"},
            timeout=60,
        )
        r.raise_for_status()
        data = r.json()
        ids.update(item["cert_id"] for item in data["items"])
        if page * 500 >= data["total"]:
            return ids
        page += 1


def _redeem(
    http: requests.Session, dep: Deployment, sid: str, label: str | None = None
) -> requests.Response:
    base = random.choice(dep.processes).url
    body = (
        {"generation_session_id": sid}
        if label is None
        else {"generation_session_id": sid, "label": label}
    )
    return http.post(
        f"{base}/api/generate-certificate",
        json=body,
        headers={"Authorization": f"Bearer {dep.api_key}"},
        timeout=30,
    )


def run_phase(
    dep: Deployment,
    name: str,
    *,
    duration: float,
    threads: int = 2,
    connections: int = 16,
    crash: bool = False,
    kill_at: float = 0.5,
    sample_gets: int = 300,
    log: Any = print,
) -> PhaseResult:
    """One bounded load run (optionally with a ``kill -9`` at mid-run), then every check."""
    problems: list[str] = []
    jdir = dep.workdir / f"journal-{name}"
    jdir.mkdir(parents=True, exist_ok=True)
    before = set(_db_certificates(dep))
    http = _session()
    log_before = checkpoint_of(http, dep.processes[0].url)

    rss_idle = [p.rss_kib() for p in dep.processes]
    procs = [
        _run_wrk(
            p.url,
            dep.api_key,
            jdir / f"wrk{i}",
            duration=duration,
            threads=threads,
            connections=connections,
        )
        for i, p in enumerate(dep.processes)
    ]
    began = time.monotonic()
    # RSS after the warm-up (10% of the run) and again at the end: memory must stay flat.
    time.sleep(max(0.5, duration * 0.1))
    rss_start = [p.rss_kib() for p in dep.processes]
    kills = 0
    killed_at = restarted_at = None
    if crash:
        time.sleep(max(0.0, duration * kill_at - (time.monotonic() - began)))
        victim = dep.processes[0]
        victim.kill9()
        kills += 1
        killed_at = time.monotonic() - began
        victim.start()
        restarted_at = time.monotonic() - began
    time.sleep(max(0.0, duration * 0.95 - (time.monotonic() - began)))
    rss_end = [p.rss_kib() for p in dep.processes]
    summaries = []
    for proc in procs:
        out, _ = proc.communicate(timeout=duration + 120)
        line = next((ln for ln in out.splitlines() if ln.startswith('{"requests"')), None)
        if proc.returncode != 0 or line is None:
            raise RuntimeError(f"wrk failed ({proc.returncode}):\n{out[-2000:]}")
        summaries.append(json.loads(line))
    elapsed = max(s["duration_us"] for s in summaries) / 1e6

    _quiesce(dep)
    journal = Journal.read(sorted(jdir.glob("wrk*.*")))
    db = {k: v for k, v in _db_certificates(dep).items() if k not in before}
    by_session = {jti: cert_id for cert_id, (jti, _) in db.items()}

    # -- sessions after the crash: a redeemed one yields its certificate again to an
    # identical retry (the lost answer recovered) and nothing to another request; an
    # unredeemed one yields exactly one certificate.
    session_checks: dict[str, Any] = {}
    if crash:
        answered_sessions = {db[c][0] for c in journal.answered if c in db}
        sent = {session_jti(s): s for s in journal.sent}
        unsent = [s for s in journal.generated if session_jti(s) not in sent]
        in_flight_committed = [
            s for j, s in sent.items() if j in by_session and j not in answered_sessions
        ]
        in_flight_lost = [s for j, s in sent.items() if j not in by_session]
        answered_sample = random.sample(
            [sent[j] for j in answered_sessions if j in sent], k=min(20, len(answered_sessions))
        )
        twice_ok = 0
        for sid in in_flight_committed + answered_sample:
            retry, other = _redeem(http, dep, sid), _redeem(http, dep, sid, label="other")
            stored = by_session[session_jti(sid)]
            same = retry.status_code == 201 and retry.json().get("cert_id") == stored
            if not (same or retry.status_code == 410) or other.status_code not in (409, 410):
                problems.append(
                    f"a redeemed session: retry {retry.status_code} {retry.text[:120]}, "
                    f"other request {other.status_code} (want its certificate, then 409)"
                )
            else:
                twice_ok += 1
        once_ok = 0
        expired = 0
        for sid in (in_flight_lost + unsent)[:40]:
            first = _redeem(http, dep, sid)
            second = _redeem(http, dep, sid)
            third = _redeem(http, dep, sid, label="other")
            if first.status_code == 410 and second.status_code == 410:
                expired += 1
                continue
            if (
                first.status_code != 201
                or second.status_code != 201
                or second.json().get("cert_id") != first.json().get("cert_id")
                or third.status_code != 409
            ):
                problems.append(
                    f"an unredeemed session: {first.status_code}, retry {second.status_code}, "
                    f"other {third.status_code} (want 201, the same 201, 409)"
                )
                continue
            once_ok += 1
        session_checks = {
            "redeemed_sessions_answered_again_never_reissued": twice_ok,
            "in_flight_committed_at_cut": len(in_flight_committed),
            "in_flight_not_committed_at_cut": len(in_flight_lost),
            "unredeemed_redeemed_exactly_once": once_ok,
            "unredeemed_expired": expired,
        }

    # -- every answer is stored, audited, retrievable and valid.
    jwks = http.get(f"{dep.processes[0].url}/.well-known/jwks.json", timeout=30).json()
    missing = [c for c in journal.answered if c not in db]
    if missing:
        problems.append(
            f"{len(missing)} answered certificates are not in the database: {missing[:5]}"
        )
    changed = [c for c, tok in journal.answered.items() if c in db and db[c][1] != tok]
    if changed:
        problems.append(
            f"{len(changed)} stored tokens differ from the answered ones: {changed[:5]}"
        )
    invalid = 0
    for cert_id, token in journal.answered.items():
        try:
            cert = verify_certificate(token, jwks, issuer=dep.issuer)
        except Exception as exc:
            invalid += 1
            if invalid <= 5:
                problems.append(f"{cert_id} does not verify: {type(exc).__name__}: {exc}")
            continue
        if cert.claims.jti != cert_id or cert.claims.sub != dep.user:
            invalid += 1
            problems.append(f"{cert_id}: the token names {cert.claims.jti} / {cert.claims.sub}")
    audited = _audit_ids(http, dep)
    not_audited = [c for c in journal.answered if c not in audited]
    if not_audited:
        problems.append(f"{len(not_audited)} answered certificates are not in the audit")
    sample = random.sample(sorted(journal.answered), k=min(sample_gets, len(journal.answered)))
    not_retrievable = 0
    for cert_id in sample:
        r = http.get(f"{random.choice(dep.processes).url}/api/certificates/{cert_id}", timeout=30)
        if r.status_code != 200 or r.json().get("token") != journal.answered[cert_id]:
            not_retrievable += 1
            problems.append(f"GET /api/certificates/{cert_id}: {r.status_code}")

    # -- nothing in the database that no client was told about, except cut-off redemptions.
    sent_jtis = {session_jti(s) for s in journal.sent}
    unanswered = {
        c: jti for c, (jti, _) in db.items() if c not in journal.answered and c not in before
    }
    unexplained = [c for c, jti in unanswered.items() if jti not in sent_jtis]
    if unexplained:
        problems.append(f"{len(unexplained)} certificates in the database were never requested")
    cut_bound = connections * len(dep.processes) * (1 + kills)
    if len(unanswered) > cut_bound:
        problems.append(
            f"{len(unanswered)} unanswered certificates exceed the {cut_bound} redemptions that "
            "can be in flight when connections are cut"
        )

    # -- the transparency log holds every certificate, gapless, and extends what it showed.
    log_checks = check_log(dep, http, journal.answered, log_before, problems)

    fives = [e for e in journal.errors if e[0] >= 500]
    if fives:
        problems.append(f"{len(fives)} 5xx answers, e.g. {fives[:3]}")
    others = [e for e in journal.errors if e[0] < 500]
    if others:
        problems.append(f"{len(others)} error answers, e.g. {others[:3]}")

    total_requests = sum(s["requests"] for s in summaries)
    report = {
        "phase": name,
        "backend": dep.backend,
        "processes": len(dep.processes),
        "duration_s": round(elapsed, 2),
        "wrk": f"{len(procs)} x wrk -t{threads} -c{connections}",
        "requests": total_requests,
        "requests_per_s": round(total_requests / elapsed, 1),
        "certificates_answered": len(journal.answered),
        "certificates_per_s": round(len(journal.answered) / elapsed, 1),
        "p50_ms": round(max(s["p50_us"] for s in summaries) / 1000, 2),
        "p99_ms": round(max(s["p99_us"] for s in summaries) / 1000, 2),
        "http_5xx": len(fives),
        "http_errors": len(journal.errors),
        "socket_errors": sum(
            s["connect_errors"] + s["read_errors"] + s["write_errors"] + s["timeouts"]
            for s in summaries
        ),
        "rss_idle_mib": [round(r / 1024, 1) if r else None for r in rss_idle],
        "rss_start_mib": [round(r / 1024, 1) if r else None for r in rss_start],
        "rss_end_mib": [round(r / 1024, 1) if r else None for r in rss_end],
        "verified": len(journal.answered) - invalid,
        "audited": len(journal.answered) - len(not_audited),
        "retrieved_individually": len(sample) - not_retrievable,
        "unanswered_in_db_cut_off": len(unanswered),
        "kills": kills,
        "killed_at_s": None if killed_at is None else round(killed_at, 2),
        "restarted_at_s": None if restarted_at is None else round(restarted_at, 2),
        **session_checks,
        **log_checks,
        "problems": len(problems),
    }
    log(json.dumps(report))
    return PhaseResult(name=name, report=report, problems=problems)


def run_backend(
    backend: str,
    *,
    duration: float,
    crash_duration: float | None = None,
    kill_at: float = 0.5,
    threads: int = 2,
    connections: int = 16,
    steady: bool = True,
    workdir: Path | None = None,
    postgres: PostgresCluster | None = None,
    log: Any = print,
) -> list[PhaseResult]:
    with contextlib.ExitStack() as stack:
        if workdir is None:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="pg-load-")))
        dep = stack.enter_context(deployment(backend, workdir, postgres=postgres))
        results = []
        per_proc_threads = threads if backend == "sqlite" else max(1, threads // 2)
        per_proc_conns = connections if backend == "sqlite" else max(1, connections // 2)
        if steady:
            results.append(
                run_phase(
                    dep,
                    f"{backend}-steady",
                    duration=duration,
                    threads=per_proc_threads,
                    connections=per_proc_conns,
                    log=log,
                )
            )
        results.append(
            run_phase(
                dep,
                f"{backend}-crash",
                duration=crash_duration or duration,
                threads=per_proc_threads,
                connections=per_proc_conns,
                crash=True,
                kill_at=kill_at,
                log=log,
            )
        )
        return results
