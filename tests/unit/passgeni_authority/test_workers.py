"""``serve --workers N`` as a real program: a supervisor and N spawned worker
processes, each with its own ``SO_REUSEPORT`` listening socket.

What is checked is what the kernel and the process table say (``/proc``):
one listening socket per worker (not one shared socket), connections spread
over both workers, a killed worker replaced, every process gone after
``SIGTERM``, and a clear one-line failure when the port is taken.
"""

from __future__ import annotations

from pathlib import Path

import pytest


def test_a_worker_process_syncs_its_wal_on_its_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``serve --workers N`` workers wait for their WAL sync on the loop (leaving the
    CPU to the other workers); a single-process server keeps the helper thread."""
    import json

    from passgeni_authority import AuthoritySettings
    from passgeni_authority.cli import _SERVE_ENV, _SERVE_KEYS, worker_app

    options = dict.fromkeys(_SERVE_KEYS)
    options |= {"state_dir": str(tmp_path), "host": "127.0.0.1", "port": 8765}
    monkeypatch.setenv(_SERVE_ENV, json.dumps(options))
    app = worker_app()
    service = app.state.service
    try:
        assert service.settings.wal_sync_in_loop is True
        assert service.storage.committer._sync_in_loop is True
    finally:
        service.close()
    assert AuthoritySettings(state_dir=tmp_path).wal_sync_in_loop is False


def test_worker_cpus_rule() -> None:
    from passgeni_authority._workers import worker_cpus

    assert worker_cpus(2, "auto", {0, 1}) == [0, 1]
    assert worker_cpus(2, "auto", {0, 1, 2, 3}) is None  # a quota'd container sees them all
    assert worker_cpus(4, "auto", {3, 1}) is None
    assert worker_cpus(3, "on", {5, 1}) == [1, 5]  # round-robin: the third shares CPU 1
    assert worker_cpus(2, "off", {0, 1}) is None
    assert worker_cpus(1, "on", {0, 1}) is None  # one worker: nothing to spread
    with pytest.raises(ValueError, match="auto, on, off"):
        worker_cpus(2, "always", {0, 1})
