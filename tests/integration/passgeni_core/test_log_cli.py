"""`passgeni log verify` and `passgeni log monitor` against the real served authority:
certificates issued and one revoked, the checkpoint and proofs fetched, inclusion checked
offline and online; a rewritten history (an operator editing a stored leaf, then restarting
the authority) fails the monitor loudly."""

from __future__ import annotations

import base64
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from passgeni_core import provision
from passgeni_core.crypto import NoteSigner, checkpoint_text
from tests.support.authority import live_authority
from tests.unit.passgeni_core.auditor_fixtures import clean_env, run

__all__ = ["clean_env"]


def _issue(live: Any, count: int) -> list[Any]:
    with live.client() as client:
        return [provision(client, "soc2") for _ in range(count)]


def test_log_verify_online_and_offline(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with live_authority(tmp_path / "authority") as live:
        first, revoked, last = _issue(live, 3)
        with live.client() as client:
            client.revoke(revoked.cert_id, "leaked")
            record = client.get_certificate(last.cert_id)
            key = client.log_key()
            note = client.log_checkpoint()
        assert record.log_index is not None

        # Online, by id: everything fetched, checked here.
        code, out, err = run(capsys, "log", "verify", last.cert_id, "--json", *live.flags())
        assert code == 0, err
        result = json.loads(out)
        assert result["included"] and result["index"] == record.log_index
        assert result["offline"] is False

        # Offline: token, checkpoint, proof and pinned key on disk; no authority configured.
        size = int(note.split("\n")[1])
        with live.client() as client:
            hashes = client.log_inclusion_proof(record.log_index, size)
        (tmp_path / "cert.jwt").write_text(record.token)
        (tmp_path / "checkpoint").write_text(note)
        (tmp_path / "log-key").write_text(key.key + "\n")
        (tmp_path / "proof.json").write_text(
            json.dumps(
                {
                    "index": record.log_index,
                    "size": size,
                    "hashes": [base64.b64encode(h).decode() for h in hashes],
                }
            )
        )
        offline = (
            "--checkpoint", str(tmp_path / "checkpoint"), "--proof", str(tmp_path / "proof.json"),
            "--log-key", f"@{tmp_path / 'log-key'}",
        )  # fmt: skip
        code, out, err = run(capsys, "log", "verify", f"@{tmp_path / 'cert.jwt'}", *offline)
        assert code == 0, err
        assert f"INCLUDED: leaf {record.log_index} of {size}" in out

        # Another certificate's token with this proof: not included (exit 1, one line).
        (tmp_path / "other.jwt").write_text(first.token)
        code, _out, err = run(capsys, "log", "verify", f"@{tmp_path / 'other.jwt'}", *offline)
        assert code == 1 and "log_proof_invalid" in err and "Traceback" not in err

        # A checkpoint signed by someone else's key (same origin): refused.
        forger = NoteSigner.generate(key.name)
        forged = forger.sign(checkpoint_text(key.name, size, b"\x00" * 32))
        (tmp_path / "forged").write_text(forged)
        code, _out, err = run(
            capsys, "log", "verify", f"@{tmp_path / 'cert.jwt'}",
            "--checkpoint", str(tmp_path / "forged"), "--proof", str(tmp_path / "proof.json"),
            "--log-key", key.key,
        )  # fmt: skip
        assert code == 1 and "log_proof_invalid" in err

        # A token with a pinned, newer checkpoint but no proof: the proof is fetched.
        code, out, err = run(
            capsys, "log", "verify", f"@{tmp_path / 'cert.jwt'}",
            "--log-key", key.key, *live.flags(),
        )  # fmt: skip
        assert code == 0, err


def test_log_monitor_follows_the_log_and_fails_loudly_on_rewritten_history(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state_dir = tmp_path / "authority"
    state = tmp_path / "monitor.json"
    with live_authority(state_dir) as live:
        _issue(live, 2)
        code, out, err = run(capsys, "log", "monitor", "--state", str(state), *live.flags())
        assert code == 0, err
        assert "first checkpoint" in out
        first = json.loads(state.read_text())
        _issue(live, 3)
        code, out, err = run(
            capsys, "log", "monitor", "--state", str(state), "--json", *live.flags()
        )
        assert code == 0, err
        assert json.loads(out)["new_leaves"] == 3
        second = json.loads(state.read_text())
        assert second["size"] == first["size"] + 3
        # A certificate checked against the very checkpoint the monitor saw.
        with live.client() as client:
            token = client.get_certificate(_issue(live, 1)[0].cert_id).token
        (tmp_path / "late.jwt").write_text(token)
        code, _out, err = run(
            capsys, "log", "verify", f"@{tmp_path / 'late.jwt'}", "--checkpoint", str(state),
            *live.flags(),
        )  # fmt: skip
        assert code == 1 and "is not in the checkpoint's tree" in err  # newer than it
        code, _out, err = run(capsys, "log", "monitor", "--state", str(state), *live.flags())
        assert code == 0, err
        second = json.loads(state.read_text())
        code, _out, err = run(
            capsys, "log", "verify", f"@{tmp_path / 'late.jwt'}", "--checkpoint", str(state),
            *live.flags(),
        )  # fmt: skip
        assert code == 0, err
    # The operator rewrites one old leaf (say, to hide a certificate) and restarts.
    with sqlite3.connect(state_dir / "authority.db") as db:
        db.execute("UPDATE log_leaves SET leaf_hash = ? WHERE idx = 1", (b"\x42" * 32,))
    with live_authority(state_dir) as live:
        _issue(live, 1)
        code, _out, err = run(capsys, "log", "monitor", "--state", str(state), *live.flags())
        assert code == 1, err
        assert "log_inconsistent" in err and "history was rewritten" in err
        assert "Traceback" not in err
        # The state still holds the last good checkpoint; the rejected one is kept beside it.
        assert json.loads(state.read_text()) == second
        rejected = (tmp_path / "monitor.json.rejected").read_text()
        assert rejected.split("\n")[1] == str(second["size"] + 1)
        # And it keeps failing: the rewrite is not forgotten on the next run.
        code, _out, err = run(capsys, "log", "monitor", "--state", str(state), *live.flags())
        assert code == 1 and "log_inconsistent" in err
