"""``passgeni-terraform-external`` driven exactly as Terraform's ``external`` data source does.

Each run is a subprocess: the query as a JSON object of strings on stdin, the
configuration in the environment, then the exit status and stdout parsed as a
flat map of strings (an error: non-zero exit, one line on stderr, nothing on
stdout). The authority is the real app (uvicorn + SQLite), the stores are a
real OpenBao dev server and moto server.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(120)


def test_validation_path_imports_nothing_heavy(tmp_path: Path) -> None:
    """The validate-only run never imports requests, jwt or a store SDK (start-up cost)."""
    env = {**os.environ, "PASSGENI_TF_VALIDATE_ONLY": "1"}
    query = json.dumps({"preset": "soc2", "destination": "vault://secret/x", "keeper": "1"})
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "terraform_external"],
        input=query.encode(),
        capture_output=True,
        env=env,
        check=True,
    )
    assert done.stdout == b"{}\n"
    imported = {
        line.split("|")[-1].strip()
        for line in done.stderr.decode().splitlines()
        if line.startswith("import time:")
    }
    for heavy in ("requests", "jwt", "cryptography", "hvac", "boto3", "botocore", "psycopg"):
        assert heavy not in imported, heavy
    # Neither the HTTP client nor a workflow: validating needs the model and the URI grammar.
    assert not {
        m for m in imported if m.startswith(("passgeni_core.client", "passgeni_core.workflows"))
    }


@pytest.mark.parametrize(
    "query",
    [
        {
            "preset": "soc2",
            "destination": "memory://tf-fail-closed/db#password",
            "keeper": "1",
            "mode": "ensure",
        },
        {"preset": "soc2", "mode": "return"},
    ],
)
def test_no_authority_configured_fails_closed(tmp_path: Path, query: dict[str, str]) -> None:
    """No authority anywhere: the program's error form, and the destination is never written."""
    import io

    from passgeni_core.stores import open_store, parse_store_uri
    from terraform_external import main

    out, err = io.StringIO(), io.StringIO()
    code = main(
        [],
        stdin=io.BytesIO(json.dumps(query).encode()),
        stdout=out,
        stderr=err,
        environ={"PASSGENI_CONFIG": os.devnull, "HOME": str(tmp_path)},
    )
    assert code == 1 and out.getvalue() == ""
    line = err.getvalue()
    assert line.startswith("passgeni-terraform-external: error [authority_not_configured]:")
    assert line.count("\n") == 1 and 'authority_url = "embedded"' in line
    store = open_store("memory://")
    try:
        assert store.read(parse_store_uri("memory://tf-fail-closed/db#password")) is None
    finally:
        store.close()


def test_authority_url_accepts_embedded_only_by_name() -> None:
    from passgeni_core import InvalidRequest
    from terraform_external._query import parse_query

    asked = {"preset": "soc2", "mode": "return"}
    assert parse_query({**asked, "authority_url": "embedded"}).authority_url == "embedded"
    with pytest.raises(InvalidRequest, match="embedded"):
        parse_query({**asked, "authority_url": "embedded-ish"})


def test_only_ensure_and_return_write_and_they_must_be_asked_for() -> None:
    from passgeni_core import InvalidRequest
    from terraform_external._query import parse_query

    where = {"preset": "soc2", "destination": "vault://secret/a/b#password"}
    assert parse_query(where).mode == "read"
    assert parse_query({**where, "mode": "ensure"}).mode == "ensure"
    with pytest.raises(InvalidRequest, match='now mode "ensure"'):
        parse_query({**where, "mode": "store"})
    with pytest.raises(InvalidRequest, match='mode = "return"'):
        parse_query({"preset": "soc2"})


def test_store_options_are_a_json_object_of_strings() -> None:
    from passgeni_core import InvalidRequest
    from terraform_external._query import parse_query

    where = {"preset": "soc2", "destination": "aws-sm://app/db#password"}
    assert parse_query(where).store_options == {}
    given = parse_query({**where, "store_options": '{"kms_key_id": "alias/app"}'})
    assert given.store_options == {"kms_key_id": "alias/app"}
    for bad in ("alias/app", '["kms_key_id"]', '{"kms_key_id": 7}', '{"a": "1", "a": "2"}'):
        with pytest.raises(InvalidRequest):
            parse_query({**where, "store_options": bad})
    with pytest.raises(InvalidRequest, match="needs a destination"):
        parse_query({"preset": "soc2", "mode": "return", "store_options": '{"a": "b"}'})


def test_provider_store_options_are_checked_by_name_without_io() -> None:
    from pyvider.cty.exceptions import CtyValidationError

    from terraform_external.provider._credential import CredentialConfig, check_config

    base = {"destination": "aws-sm://app/db#password", "preset": "soc2"}
    check_config(CredentialConfig(**base, store_options={"kms_key_id": "alias/app"}))
    with pytest.raises(CtyValidationError, match="store_options: store option 'kms'"):
        check_config(CredentialConfig(**base, store_options={"kms": "alias/app"}))
