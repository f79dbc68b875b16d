"""The authority with real neighbours: OpenBao Transit signing, headless Chromium,
the embedded mode, the CLI, and a secrets-in-logs sweep over a full flow."""

from __future__ import annotations

import argparse
import json
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from passgeni_authority import (
    AuthorityService,
    AuthoritySettings,
    TransitSigner,
    cli,
)
from passgeni_authority.embedded import EmbeddedAuthority


def test_transit_unreachable_is_authority_unavailable(tmp_path: Path):
    from passgeni_core import AuthorityUnavailable

    signer = TransitSigner("http://127.0.0.1:9", "t", timeout=1)
    with pytest.raises(AuthorityUnavailable):
        AuthorityService(AuthoritySettings(state_dir=tmp_path, signer=signer))


def test_embedded_authority_is_registered_as_an_entry_point():
    (ep,) = [e for e in entry_points(group="passgeni.embedded") if e.name == "default"]
    assert ep.load() is EmbeddedAuthority
    (cli_ep,) = [e for e in entry_points(group="passgeni.cli") if e.name == "authority"]
    assert cli_ep.load() is cli.register


def test_cli_manages_keys_with_flags_over_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    env_dir, flag_dir = tmp_path / "env", tmp_path / "flag"
    monkeypatch.setenv("PASSGENI_STATE_DIR", str(env_dir))
    monkeypatch.delenv("PASSGENI_DATABASE_URL", raising=False)
    assert cli.main(["create-key", "--user", "ops-bot", "--rate-limit", "5000", "--json"]) == 0
    created = json.loads(capsys.readouterr().out)
    assert created["api_key"].startswith(f"pgk_{created['prefix']}_")
    assert (env_dir / "authority.db").exists()
    # The flag wins over the environment.
    assert cli.main(["create-key", "--user", "x", "--state-dir", str(flag_dir)]) == 0
    assert capsys.readouterr().out.startswith("pgk_")
    assert (flag_dir / "authority.db").exists()
    url = f"sqlite:///{env_dir / 'authority.db'}"
    assert cli.main(["list-keys", "--json", "--database-url", url]) == 0
    listed = json.loads(capsys.readouterr().out)["keys"]
    assert [k["user"] for k in listed] == ["ops-bot"] and listed[0]["rate_limit"] == 5000
    assert created["api_key"] not in json.dumps(listed)
    assert cli.main(["revoke-key", created["prefix"]]) == 0
    capsys.readouterr()
    assert cli.main(["list-keys", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["keys"][0]["revoked_at"]
    assert cli.main(["revoke-key", "zzzzzzzz"]) == 4  # not_found: "other PassGeni error"
    assert "[not_found]" in capsys.readouterr().err
    assert cli.main(["rotate-keys", "--json"]) == 0
    rotation = json.loads(capsys.readouterr().out)
    assert rotation["keys"][0]["kid"] == rotation["active"] and len(rotation["keys"]) == 2
    monkeypatch.setenv("PASSGENI_TRANSIT_URL", "http://127.0.0.1:9")
    monkeypatch.delenv("VAULT_TOKEN", raising=False)
    monkeypatch.delenv("PASSGENI_TRANSIT_TOKEN", raising=False)
    assert cli.main(["list-keys"]) == 2  # a Transit URL without a token: usage error
    assert "VAULT_TOKEN" in capsys.readouterr().err


def test_cli_register_adds_the_authority_command():
    parser = argparse.ArgumentParser(prog="passgeni")
    sub = parser.add_subparsers(dest="command")
    cli.register(sub)
    for argv in (
        ["authority", "serve", "--port", "9000", "--database-url", "sqlite://"],
        ["authority", "create-key", "--user", "u", "--team", "t", "--database-url", "x"],
        ["authority", "list-keys", "--database-url", "x", "--json"],
        ["authority", "revoke-key", "abc", "--database-url", "x"],
        ["authority", "rotate-keys", "--database-url", "x", "--json"],
    ):
        args = parser.parse_args(argv)
        assert callable(args.handler) and args.database_url
