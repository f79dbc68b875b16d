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
