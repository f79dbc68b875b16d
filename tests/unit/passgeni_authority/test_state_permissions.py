"""The authority's state is owner-only (issue #21, finding 9): the database holds the session
secret and the API key hashes, and SQLite gives its WAL and shared-memory files the database's
permissions. A state directory others can write to is refused with a clear message."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from passgeni_authority import AuthorityService, AuthoritySettings
from passgeni_core import InvalidRequest


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_every_state_file_is_owner_only(tmp_path: Path) -> None:
    state = tmp_path / "state"
    with AuthorityService(AuthoritySettings(state_dir=state, public_url="http://a.test")) as svc:
        svc.create_api_key("someone")  # a write: the WAL and its index exist now
        files = [p for p in state.rglob("*") if p.is_file()]
        names = {p.name for p in files}
        assert {"authority.db", "authority.db-wal", "authority.db-shm"} <= names, names
        assert {p.name: _mode(p) for p in files if _mode(p) & 0o077} == {}
    assert _mode(state) & 0o077 == 0


def test_a_database_created_world_readable_is_tightened(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    (state / "authority.db").touch(mode=0o644)
    with AuthorityService(AuthoritySettings(state_dir=state, public_url="http://a.test")):
        assert _mode(state / "authority.db") == 0o600


def test_a_state_directory_others_can_write_is_refused(tmp_path: Path) -> None:
    state = tmp_path / "shared"
    state.mkdir()
    state.chmod(0o777)
    with pytest.raises(InvalidRequest, match="writable by group or others") as info:
        AuthorityService(AuthoritySettings(state_dir=state, public_url="http://a.test"))
    assert "chmod go-w" in info.value.message
    assert not (state / "authority.db").exists()
