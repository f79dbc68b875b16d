"""Fail closed: no authority configured means no certificate, no write, no embedded authority.

Every command that needs an authority refuses with ``authority_not_configured``
(exit 2, one line saying how to configure one) before anything else happens:
the ``passgeni.embedded`` entry point is a sentinel that records being loaded,
and the store is the real reference backend (``memory://``), read back after.
The embedded authority runs only when asked (``--embedded``,
``PASSGENI_URL=embedded``, ``url = "embedded"``). ``verify --jwks`` is offline:
run as a real process with an empty ``HOME``, an unroutable ``PASSGENI_URL``
and every socket connection refused, it writes nothing and asks nobody.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from passgeni_core import AuthorityNotConfigured, InvalidRequest, resolve_config
from passgeni_core.stores import open_store, parse_store_uri
from passgeni_core.testing import FakeAuthority
from tests.unit.passgeni_core.cli_helpers import (
    clean_env,  # noqa: F401 - an autouse fixture
    embedded_entry_points,
    one_line_error,
    run,
)

#: Loads of the sentinel "embedded authority": must stay empty unless asked for.
STARTED: list[str] = []


class Sentinel:
    """Stands in for ``EmbeddedAuthority``: records that it was started, then fails."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        STARTED.append("started")
        raise RuntimeError("the sentinel embedded authority was started")


@pytest.fixture(autouse=True)
def sentinel(monkeypatch: pytest.MonkeyPatch) -> None:
    STARTED.clear()
    ep = EntryPoint("default", f"{__name__}:Sentinel", "passgeni.embedded")
    embedded_entry_points(monkeypatch, [ep])


# --- configuration -----------------------------------------------------------------------------


def test_embedded_only_when_asked_for_from_any_source(tmp_path: Path) -> None:
    missing = tmp_path / "missing.toml"
    assert not resolve_config(environ={}, config_path=missing).configured
    for config in (
        resolve_config(embedded=True, environ={}, config_path=missing),
        resolve_config(url="embedded", environ={}, config_path=missing),
        resolve_config(environ={"PASSGENI_URL": "embedded"}, config_path=missing),
    ):
        assert config.embedded and config.configured and config.url is None
    cfg = tmp_path / "config.toml"
    cfg.write_text('url = "embedded"\n')
    config = resolve_config(environ={}, config_path=cfg)
    assert config.embedded and config.url_source == "config file"
    # Precedence still holds: the environment's URL beats the file's "embedded".
    config = resolve_config(environ={"PASSGENI_URL": "https://a.example"}, config_path=cfg)
    assert not config.embedded and config.url == "https://a.example"
    with pytest.raises(InvalidRequest, match="both asked for"):
        resolve_config(url="https://a.example", embedded=True, environ={}, config_path=missing)


def test_the_refusal_says_how_to_configure(tmp_path: Path) -> None:
    cfg = tmp_path / "nowhere.toml"
    with pytest.raises(AuthorityNotConfigured) as info:
        resolve_config(environ={}, config_path=cfg).require_authority()
    message = info.value.message
    assert info.value.code == "authority_not_configured" and "\n" not in message
    for hint in ("PASSGENI_URL", "--url", str(cfg), "--embedded", "PASSGENI_URL=embedded"):
        assert hint in message, hint
    # Adapters name their own options.
    with pytest.raises(AuthorityNotConfigured, match="url: embedded"):
        resolve_config(
            environ={},
            config_path=cfg,
            url_option="the url option",
            embedded_option="url: embedded",
        ).require_authority()


# --- every command refuses before anything else ---------------------------------------------------


def _inventory(tmp_path: Path) -> str:
    path = tmp_path / "inventory.yaml"
    path.write_text(
        json.dumps(
            {
                "defaults": {"preset": "soc2"},
                "credentials": [{"name": "a", "destination": "memory://fc/rot/a#password"}],
            }
        )
    )
    return str(path)


def _token() -> str:
    return FakeAuthority().issue(None).token


COMMANDS: dict[str, Any] = {
    "provision": lambda t: ["provision", "--preset", "soc2"],
    "provision --show-password": lambda t: ["provision", "--preset", "soc2", "--show-password"],
    "provision --store": lambda t: [
        "provision",
        "--preset",
        "soc2",
        "--store",
        "memory://fc/store/db#password",
    ],
    "scan": lambda t: ["scan", "memory://fc/"],
    "revoke": lambda t: ["revoke", "pg_0123456789abcdefghijklmn", "--reason", "x"],
    "audit": lambda t: ["audit"],
    "verify CERT_ID": lambda t: ["verify", "pg_0123456789abcdefghijklmn"],
    "verify TOKEN": lambda t: ["verify", _token()],
    "verify TOKEN --online": lambda t: ["verify", _token(), "--online"],
    "rotate": lambda t: ["rotate", "--inventory", _inventory(t), "--no-progress"],
    "status-list fetch": lambda t: ["status-list", "fetch"],
    "registry": lambda t: ["registry"],
    "evidence": lambda t: ["evidence", "--out", str(t / "bundle.zip")],
    "export in-toto": lambda t: ["export", "in-toto", _token(), "--out", str(t / "bundle.zip")],
    "scan --format oscal": lambda t: ["scan", "memory://fc/", "--format", "oscal"],
    "registry --format oscal": lambda t: ["registry", "--format", "oscal"],
}


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_commands_refuse_without_an_authority(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, *COMMANDS[name](tmp_path))
    assert code == 2 and out == "", err
    one_line_error(err, "authority_not_configured")
    assert "PASSGENI_URL" in err and "--embedded" in err
    assert STARTED == []  # no embedded authority, not even tried
    assert not (tmp_path / "bundle.zip").exists()


def test_nothing_is_written_to_the_store(capsys: pytest.CaptureFixture[str]) -> None:
    uri = parse_store_uri("memory://fc/nothing-written/db#password")
    code, _, err = run(capsys, "provision", "--preset", "soc2", "--store", str(uri))
    assert code == 2 and "[authority_not_configured]" in err
    code, _, err = run(capsys, "provision", "--preset", "soc2", "--store", str(uri), "--rotate")
    assert code == 2 and "[authority_not_configured]" in err
    store = open_store("memory://")  # the process-wide space the CLI's store used
    try:
        assert store.read(uri) is None
        assert (
            list(store.list(parse_store_uri("memory://fc/nothing-written/", allow_prefix=True)))
            == []
        )
    finally:
        store.close()


def test_no_credential_file_without_an_authority(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "cred.json"
    code, _, err = run(capsys, "provision", "--preset", "soc2", "--credential-file", str(target))
    assert code == 2 and "[authority_not_configured]" in err
    assert not target.exists()


def test_asking_for_embedded_starts_it(capsys: pytest.CaptureFixture[str]) -> None:
    """The sentinel stands in for the real class: asked for, it is started (and fails here)."""
    for argv in (["audit", "--embedded"], ["audit", "--url", "embedded"]):
        code, _, err = run(capsys, *argv)
        assert code == 3 and "[authority_unavailable]" in err and "sentinel" in err
    assert STARTED == ["started", "started"]


def test_url_and_embedded_contradict(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "audit", "--embedded", "--url", "https://a.example")
    assert code == 2
    one_line_error(err, "invalid_request")
    assert STARTED == []


# --- verify --jwks: offline, always -----------------------------------------------------------------


@pytest.fixture(scope="module")
def signed() -> tuple[FakeAuthority, str]:
    authority = FakeAuthority()
    return authority, authority.issue(None).token


@pytest.fixture
def jwks_file(tmp_path: Path, signed: tuple[FakeAuthority, str]) -> Path:
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps(signed[0].jwks_document()))
    return path


#: Refuses every outgoing connection: a command that tries exits 97 at once.
_NO_NETWORK = """
import os, socket, sys
def _refuse(*args, **kwargs):
    sys.stderr.write("NETWORK USED\\n"); sys.stderr.flush(); os._exit(97)
socket.socket.connect = _refuse
socket.socket.connect_ex = _refuse
socket.create_connection = _refuse
from passgeni_core.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _offline_cli(home: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PASSGENI_", "XDG_")) and k not in ("HOME",)
    }
    env.update(
        HOME=str(home),
        # Unroutable: were it contacted, the command would hang, not pass.
        PASSGENI_URL="http://10.255.255.1:9",
        PASSGENI_TIMEOUT="60",
    )
    return subprocess.run(
        [sys.executable, "-c", _NO_NETWORK, *argv],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(
    "value",
    [
        "pg_0123456789abcdefghijklmn",  # a certificate id
        "https://authority.test/cert/pg_0123456789abcdefghijklmn",  # a certificate URL
        "eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJ4In0",  # two segments
        "eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJ4In0.c2ln.more",  # four
        "eyJhbGciOiJFUzI1NiJ9.eyJpc3Mi OiJ4In0.c2ln",  # not base64url
        "not a token at all",
    ],
)
@pytest.mark.parametrize("extra", [[], ["--embedded"]])
def test_verify_with_jwks_refuses_non_tokens_offline_and_statelessly(
    tmp_path: Path, jwks_file: Path, value: str, extra: list[str]
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    done = _offline_cli(home, "verify", value, "--jwks", str(jwks_file), *extra)
    assert done.returncode == 1, done.stderr
    assert done.stderr.startswith("passgeni: error [malformed_token]:")
    assert done.stderr.count("\n") == 1 and "NETWORK USED" not in done.stderr
    assert list(home.rglob("*")) == []  # no database, no keys, no API key, no config


def test_verify_with_jwks_checks_a_real_token_offline(
    tmp_path: Path, jwks_file: Path, signed: tuple[FakeAuthority, str]
) -> None:
    authority, token = signed
    home = tmp_path / "home"
    home.mkdir()
    done = _offline_cli(
        home, "verify", token, "--jwks", str(jwks_file), "--issuer", authority.issuer, "--json"
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["valid"] and summary["checked_online"] is False
    assert summary["embedded_issuer"] is False
    # --online would ask the authority: refused, offline.
    done = _offline_cli(home, "verify", token, "--jwks", str(jwks_file), "--online")
    assert done.returncode == 2 and "[invalid_request]" in done.stderr
    assert "NETWORK USED" not in done.stderr
    assert list(home.rglob("*")) == []


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    st.text(min_size=1, max_size=80).filter(
        lambda s: s.strip() and not s.strip().startswith(("-", "@")) and "\x00" not in s
    )
)
def test_anything_but_a_compact_jws_is_malformed_with_jwks(
    capsys: pytest.CaptureFixture[str], jwks_file_shared: Path, value: str
) -> None:
    """Whatever the input, --jwks never looks it up: a compact JWS is verified (and here
    fails as some invalid token), anything else is ``malformed_token``; exit 1 either way."""
    import re

    capsys.readouterr()
    code, _, err = run(
        capsys,
        "verify",
        value,
        "--jwks",
        str(jwks_file_shared),
        "--issuer",
        "https://authority.test",
    )
    assert code == 1, err
    if not re.fullmatch(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*", value.strip()):
        assert "[malformed_token]" in err
    assert STARTED == []


@pytest.fixture(scope="module")
def jwks_file_shared(
    tmp_path_factory: pytest.TempPathFactory, signed: tuple[FakeAuthority, str]
) -> Path:
    path = tmp_path_factory.mktemp("jwks") / "jwks.json"
    path.write_text(json.dumps(signed[0].jwks_document()))
    return path
