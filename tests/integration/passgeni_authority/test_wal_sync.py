"""Durability of the loop-native group commit (``_commit._LoopGroups``).

A group is committed with ``synchronous=NORMAL`` and the WAL file is then
synced before anyone is answered. The app is driven in process as a raw
ASGI callable (on the test's event loop, which is the loop the group commit
runs on) so the sync can be observed and made to fail: when it fails,
nobody in the group may be told it succeeded.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from passgeni_authority import AuthoritySettings, create_app
from tests.support.seeds import with_commitments


async def _post(app: Any, path: str, key: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """One ``POST`` through the ASGI interface; ``(status, JSON body)``."""
    raw = json.dumps(body).encode()
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"127.0.0.1"),
            (b"authorization", f"Bearer {key}".encode()),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(raw)).encode()),
        ],
        "client": ("127.0.0.1", 1234),
        "server": ("127.0.0.1", 80),
    }
    sent_body = False

    async def receive() -> dict[str, Any]:
        nonlocal sent_body
        if not sent_body:
            sent_body = True
            return {"type": "http.request", "body": raw, "more_body": False}
        return {"type": "http.disconnect"}

    messages: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        messages.append(message)

    await app(scope, receive, send)
    start = next(m for m in messages if m["type"] == "http.response.start")
    content = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")
    return start["status"], json.loads(content)


class Authority:
    """The app, its service, an automation key and a recording ``os.fsync``."""

    def __init__(
        self, state_dir: Path, monkeypatch: pytest.MonkeyPatch, *, sync_in_loop: bool
    ) -> None:
        self.state_dir = state_dir
        self.app = create_app(AuthoritySettings(state_dir=state_dir, wal_sync_in_loop=sync_in_loop))
        self.service = self.app.state.service
        self.key: str = self.service.create_api_key("wal-sync", rate_limit=100_000).key
        self.wal = os.path.realpath(state_dir / "authority.db-wal")
        #: Files ``os.fsync`` was called on (resolved through /proc/self/fd).
        self.synced: list[str] = []
        self.failing = False
        self._real_fsync = os.fsync
        monkeypatch.setattr("passgeni_authority._loopcommit.os.fsync", self._fsync)

    def _fsync(self, fd: int) -> None:
        self.synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        if self.failing:
            raise OSError(5, "Input/output error")
        self._real_fsync(fd)

    async def post(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        return await _post(self.app, path, self.key, with_commitments(path, body))

    async def session(self) -> str:
        status, ticket = await self.post("/api/generate", {"compliance_standard": "soc2"})
        assert status == 200, ticket
        sid: str = ticket["generation_session_id"]
        return sid

    async def redeem(self, sid: str) -> tuple[int, dict[str, Any]]:
        return await self.post("/api/generate-certificate", {"generation_session_id": sid})

    def issued_jtis(self) -> set[str]:
        with sqlite3.connect(self.state_dir / "authority.db") as db:
            return {row[0] for row in db.execute("SELECT session_jti FROM certificates")}

    def jti(self, sid: str) -> str:
        jti: str = self.service.sessions.codec.decode(sid).jti
        return jti


@pytest_asyncio.fixture(params=[False, True], ids=["sync-thread", "sync-in-loop"])
async def authority(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> AsyncIterator[Authority]:
    # Async, so that the service is created on the test's loop like a served app's.
    # Both ways of syncing the WAL (see AuthoritySettings.wal_sync_in_loop) must
    # keep every rule here.
    auth = Authority(tmp_path, monkeypatch, sync_in_loop=request.param)
    try:
        yield auth
    finally:
        monkeypatch.undo()
        auth.service.close()


def _unavailable(status: int, body: dict[str, Any]) -> None:
    assert status == 503, body
    assert body["code"] == "authority_unavailable"
    assert set(body) == {"code", "message"}  # no token, no cert_id
    assert "token" not in json.dumps(body)


@pytest.mark.asyncio
async def test_a_certificate_is_answered_after_the_wal_is_synced(authority: Authority) -> None:
    sid = await authority.session()
    authority.synced.clear()
    status, cert = await authority.redeem(sid)
    assert status == 201, cert
    assert cert["token"] and cert["cert_id"].startswith("pg_")
    # The certificate's commit was followed by a sync of the WAL file itself.
    assert authority.wal in authority.synced, authority.synced
    assert authority.jti(sid) in authority.issued_jtis()


@pytest.mark.asyncio
async def test_a_failed_wal_sync_tells_nobody_in_the_group_it_succeeded(
    authority: Authority,
) -> None:
    sessions = [await authority.session() for _ in range(4)]
    status, _cert = await authority.redeem(sessions[0])
    assert status == 201
    authority.failing = True
    authority.synced.clear()
    answers = await asyncio.gather(*(authority.redeem(sid) for sid in sessions[1:]))
    assert authority.wal in authority.synced, authority.synced
    for status, body in answers:
        _unavailable(status, body)
    # The groups were committed and only their sync failed: the rows are
    # there (their durability is in doubt), so each session stays used. While
    # the disk fails, a retry is refused too: its answer would again wait on a sync.
    issued = authority.issued_jtis()
    assert {authority.jti(sid) for sid in sessions} <= issued and len(issued) == 4
    status, body = await authority.redeem(sessions[1])
    _unavailable(status, body)
    # Once the disk works, the retry's own commit syncs the WAL (which holds the
    # earlier rows too) and it gets the certificate already made, never a second one.
    authority.failing = False
    for sid in sessions[1:]:
        status, body = await authority.redeem(sid)
        assert status == 201 and body["cert_id"].startswith("pg_"), body
    assert len(authority.issued_jtis()) == 4
    # The authority works again once the disk does.
    status, cert = await authority.redeem(await authority.session())
    assert status == 201, cert


@pytest.mark.asyncio
async def test_an_unexpected_error_in_a_commit_fails_its_group_and_the_next_still_works(
    authority: Authority,
) -> None:
    """A bug (not a database error) in a group commit answers that group with the
    API's 500 and never hangs the requests queued behind it."""
    from sqlalchemy import event

    sessions = [await authority.session() for _ in range(3)]
    assert (await authority.redeem(sessions[0]))[0] == 201
    broken = True

    def fail(_conn: Any) -> None:
        if broken:
            raise RuntimeError("a bug")

    event.listen(authority.service.engine, "commit", fail)
    try:
        status, body = await authority.redeem(sessions[1])
        assert (status, body["code"]) == (500, "authority_error"), body
        broken = False
        # The queue kept draining: the next request is served normally.
        status, cert = await authority.redeem(sessions[2])
        assert status == 201, cert
    finally:
        event.remove(authority.service.engine, "commit", fail)
    # Nothing of the failed group was committed: its session is still unused.
    status, cert = await authority.redeem(sessions[1])
    assert status == 201, cert


@pytest.mark.asyncio
async def test_requests_that_arrive_while_a_group_forms_share_its_commit(
    authority: Authority,
) -> None:
    """A group waits while the queue keeps growing: requests that reach it a loop
    iteration or two after the first are committed, and synced, with it."""
    sessions = [await authority.session() for _ in range(6)]
    assert (await authority.redeem(sessions[0]))[0] == 201

    async def after(passes: int, sid: str) -> tuple[int, dict[str, Any]]:
        for _ in range(passes):
            await asyncio.sleep(0)
        return await authority.redeem(sid)

    authority.synced.clear()
    answers = await asyncio.gather(*(after(i // 2, sid) for i, sid in enumerate(sessions[1:])))
    assert [status for status, _ in answers] == [201] * 5, answers
    assert authority.synced.count(authority.wal) == 1, authority.synced
    # A request alone is not held back waiting for company.
    lone = await authority.session()
    authority.synced.clear()
    assert (await authority.redeem(lone))[0] == 201
    assert authority.synced.count(authority.wal) == 1


@pytest.mark.asyncio
async def test_a_new_wal_file_has_its_directory_entry_synced_once(authority: Authority) -> None:
    """Syncing a file does not make its directory entry durable: a WAL file created
    since the last sync is lost whole by a power cut unless its directory is synced."""
    state = os.path.realpath(authority.state_dir)
    sid = await authority.session()
    status, _cert = await authority.redeem(sid)
    assert status == 201
    assert authority.wal in authority.synced
    assert authority.synced.count(state) == 1, authority.synced
    authority.synced.clear()
    status, _cert = await authority.redeem(await authority.session())
    assert status == 201
    assert authority.wal in authority.synced and state not in authority.synced, authority.synced
