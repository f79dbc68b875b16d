"""``passgeni provenance CERT_ID`` online against a served authority, for a credential
``provision --store`` wrote to real OpenBao; the record's own re-verification commands
(offline verify, provenance, prove) then pass as written."""

from __future__ import annotations

import json
import os
import shlex
from pathlib import Path

import pytest

from passgeni_core import AuthorityClient
from passgeni_core.cli import main
from tests.integration.vault_plugin_helper.fixtures import *  # noqa: F403 - fixtures
from tests.support import OpenBaoServer


@pytest.mark.usefixtures("passgeni_env", "vault_env")
def test_the_record_of_a_provisioned_credential_and_its_commands(
    openbao: OpenBaoServer,
    uid: str,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    uri = f"vault://secret/{uid}/provenance#db"
    assert main(["provision", "--preset", "soc2", "--store", uri, "--json"]) == 0
    cert_id = json.loads(capsys.readouterr().out)["cert_id"]

    out_file = tmp_path / "record.md"
    assert main(["provenance", cert_id, "--out", str(out_file)]) == 0
    assert f"wrote md provenance record of {cert_id} (valid" in capsys.readouterr().err
    md = out_file.read_text()
    issuer = os.environ["PASSGENI_URL"]
    assert f"online, against the authority at {issuer}" in md
    assert "declared by the client: os.urandom over" in md
    assert "nonce from `secrets`" in md
    assert f"passgeni prove {shlex.quote(uri)}" in md

    # The commands of section 8, as written, with the files it names.
    tokens = md.split("```text\n", 1)[1].split("```", 1)[0]
    (tmp_path / f"{cert_id}.jwt").write_text("".join(tokens.split()) + "\n")
    client = AuthorityClient(issuer)
    (tmp_path / "jwks.json").write_text(json.dumps(client.jwks_document()))
    monkeypatch.chdir(tmp_path)
    commands = md.split("```sh\n", 1)[1].split("```", 1)[0].splitlines()
    for line in commands:
        argv = shlex.split(line.split("  #", 1)[0])
        assert argv[0] == "passgeni", line
        assert main(argv[1:]) == 0, line
        capsys.readouterr()
