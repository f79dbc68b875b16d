"""`passgeni provision / verify / revoke / audit`, configuration and plugin commands.

Remote commands run against the real authority (uvicorn on 127.0.0.1, the
``real_authority`` fixture of ``test_provision.py``) through ``main()`` and
through the installed ``passgeni`` console script in a subprocess; embedded
mode runs the real ``EmbeddedAuthority``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import Any

import pytest

from passgeni_core import (
    InvalidRequest,
    cli as cli_module,
    resolve_config,
)
from passgeni_core.cli import main
from tests.unit.passgeni_core.cli_helpers import (
    clean_env,  # noqa: F401 - an autouse fixture
    embedded_entry_points,
    one_line_error,
    run,
)


def test_precedence_flags_env_file_embedded(tmp_path: Path) -> None:
    cfg = tmp_path / "config.toml"
    cfg.write_text('url = "https://file.example"\napi_key = "file-key"\ntimeout = 3\n')
    env = {"PASSGENI_URL": "https://env.example", "PASSGENI_TIMEOUT": "7"}
    c = resolve_config(environ=env, config_path=cfg)
    assert (c.url, c.url_source, c.api_key, c.api_key_source) == (
        "https://env.example",
        "environment",
        "file-key",
        "config file",
    )
    assert c.timeout == 7.0 and c.timeout_source == "environment"
    c = resolve_config(url="https://flag.example", timeout=1, environ=env, config_path=cfg)
    assert (c.url, c.url_source, c.timeout) == ("https://flag.example", "flag", 1.0)
    c = resolve_config(environ={}, config_path=cfg)
    assert (c.url, c.timeout, c.timeout_source) == ("https://file.example", 3.0, "config file")
    # Nothing anywhere: no authority at all, never a silent embedded one (fail closed).
    c = resolve_config(environ={}, config_path=tmp_path / "missing.toml")
    assert not c.configured and not c.embedded and c.url_source is None and c.api_key is None


def test_config_file_from_passgeni_config(tmp_path: Path) -> None:
    cfg = tmp_path / "elsewhere.toml"
    cfg.write_text('url = "https://cfg.example"\napi_key = "k-secret-123"\n')
    c = resolve_config(environ={"PASSGENI_CONFIG": str(cfg)})
    assert c.url == "https://cfg.example" and c.api_key == "k-secret-123"
    assert "k-secret-123" not in repr(c) and "k-secret-123" not in str(c)
    with pytest.raises(InvalidRequest, match="does not exist"):
        resolve_config(environ={"PASSGENI_CONFIG": str(tmp_path / "nope.toml")})


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ('api_key = "sekrit-value"\nurl = ', "not valid TOML"),
        ('url = "x"\npassword = "sekrit-value"\n', "unknown key"),
        ("timeout = 'sekrit-value'\n", "timeout must be a number"),
        ("url = 3\n", "url must be a string"),
    ],
)
def test_bad_config_files_are_one_line_errors_without_values(
    tmp_path: Path, text: str, match: str
) -> None:
    cfg = tmp_path / "config.toml"
    cfg.write_text(text)
    with pytest.raises(InvalidRequest, match=match) as info:
        resolve_config(environ={}, config_path=cfg)
    assert "sekrit-value" not in str(info.value) and "\n" not in str(info.value)


def test_bad_timeout_in_the_environment() -> None:
    with pytest.raises(InvalidRequest, match="timeout"):
        resolve_config(environ={"PASSGENI_TIMEOUT": "-1"}, config_path=Path("/nonexistent"))


def test_embedded_mode_without_the_authority_extra(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    embedded_entry_points(monkeypatch, [])
    code, out, err = run(capsys, "provision", "--preset", "soc2", "--embedded")
    assert code == 3 and out == ""
    one_line_error(err, "authority_unavailable")
    assert "passgeni[authority]" in err and "PASSGENI_URL" in err


def test_embedded_mode_with_a_broken_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = EntryPoint("default", "passgeni_no_such_module.embedded:X", "passgeni.embedded")
    embedded_entry_points(monkeypatch, [broken])
    code, _, err = run(capsys, "audit", "--embedded")
    assert code == 3
    one_line_error(err, "authority_unavailable")
    assert "ModuleNotFoundError" in err


loaded: list[str] = []


def hello_register(sub: Any) -> None:
    loaded.append("hello")
    p = sub.add_parser("hello", help="say hello")
    p.set_defaults(handler=lambda args: print("hello from a plugin") or 0)


def test_plugins_load_lazily_and_robustly(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    good = EntryPoint("hello", f"{__name__}:hello_register", "passgeni.cli")
    broken = EntryPoint("broken", "passgeni_no_such_plugin:register", "passgeni.cli")
    clash = EntryPoint("presets", "passgeni_no_such_plugin:register", "passgeni.cli")
    monkeypatch.setattr(cli_module, "_plugin_entry_points", lambda: [broken, clash, good])
    loaded.clear()

    code, out, _ = run(capsys, "presets")
    assert code == 0 and "soc2" in out and loaded == []  # nothing imported for a core command

    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    out, _ = capsys.readouterr()
    assert "hello" in out and "broken" in out and loaded == []  # listed, not imported

    code, out, _ = run(capsys, "hello")
    assert code == 0 and out == "hello from a plugin\n" and loaded == ["hello"]

    with pytest.raises(SystemExit) as info:
        main(["broken"])
    assert info.value.code == 4
    _, err = capsys.readouterr()
    one_line_error(err, "plugin_error")
    assert "ModuleNotFoundError" in err


def test_verify_argument_errors(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "verify", "https://a.example/somewhere/else")
    assert code == 2
    one_line_error(err, "invalid_request")
    code, _, err = run(capsys, "verify", "eyJx.eyJ.sig", "--jwks", "/nonexistent.json")
    assert code == 2  # an unreadable JWKS file
    code, _, err = run(capsys, "provision", "--preset", "soc2", "--target-version", "3")
    assert code == 2


def test_embedded_entry_point_is_installed() -> None:
    """`passgeni provision` with no configuration needs the authority's entry point."""
    names = {ep.name: ep.value for ep in entry_points(group="passgeni.embedded")}
    assert names.get("default") == "passgeni_authority.embedded:EmbeddedAuthority", (
        "register [project.entry-points.'passgeni.embedded'] default = "
        "'passgeni_authority.embedded:EmbeddedAuthority' in pyproject.toml and reinstall"
    )


def test_core_commands_do_not_import_plugins() -> None:
    """Lazy plugins: `passgeni presets` (and --help) never import the authority."""
    code = (
        "import sys, json, contextlib, io\n"
        "from passgeni_core.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    main(['presets'])\n"
        "    try:\n"
        "        main(['--help'])\n"
        "    except SystemExit:\n"
        "        pass\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    loaded = set(json.loads(out))
    assert not loaded & {"passgeni_authority", "fastapi", "uvicorn", "sqlalchemy"}


def test_hostile_files_and_tokens_are_one_line_errors(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Issue #21: a non-UTF-8 @FILE or --jwks file, a deeply nested token, an absurd ``iat``:
    each is one line and exit 2 (a refused token is exit 1), never a traceback."""
    import base64

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    binary = tmp_path / "binary"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    jwks = tmp_path / "jwks.json"
    jwks.write_text('{"keys": []}')
    code, _, err = run(capsys, "verify", f"@{binary}", "--jwks", str(jwks), "--issuer", "x")
    assert code in (1, 2) and "Traceback" not in err and err.count("\n") == 1
    code, _, err = run(capsys, "verify", "eyJx.eyJ.sig", "--jwks", str(binary), "--issuer", "x")
    assert code == 2 and "Traceback" not in err and err.count("\n") == 1
    deep_header = b'{"a":' + b"[" * 1100
    deep = ".".join((b64(deep_header), b64(b"{}"), b64(b"s")))
    code, _, err = run(capsys, "verify", deep, "--jwks", str(jwks), "--issuer", "x")
    assert code != 0 and "nests deeper" in err and err.count("\n") == 1
    header, payload = b'{"alg":"ES256","kid":"k"}', b'{"iat":1e20}'
    huge_iat = ".".join((b64(header), b64(payload), b64(b"s")))
    code, _, err = run(capsys, "verify", huge_iat, "--jwks", str(jwks), "--issuer", "x")
    assert code != 0 and "Traceback" not in err and err.count("\n") == 1
