"""The seed's published Node.js verification recipe, verbatim, against a served authority.

The recipe (``jwtVerify(token, JWKS, {issuer: 'passgeni.ai', algorithms: ['ES256']})``,
then ``payload.compliance_standard`` and ``payload.standards_met``) runs under real
Node.js with the real ``jose`` package, against ``passgeni authority serve --issuer
passgeni.ai`` started as its own process. ``jose`` is installed with npm into a
cache directory on first use (a fresh machine needs only the npm registry); the
test is skipped only where Node.js itself is absent.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from passgeni_core import WrongIssuer, verify_certificate
from passgeni_core.client import AuthorityClient
from passgeni_core.workflows import provision
from tests.support.authority import plain_session
from tests.support.authority_processes import AuthorityProcess
from tests.support.process import REPO_ROOT, free_port

ISSUER = "passgeni.ai"
#: Pinned, so every machine runs the same verifier.
JOSE_VERSION = "6.2.19"

# The recipe as the seed publishes it; only the inputs (token, JWKS, its URL) are wired in.
RECIPE = """
import { jwtVerify, createLocalJWKSet, createRemoteJWKSet } from 'jose'
import { readFileSync } from 'node:fs'

const { token, jwks, jwksUrl } = JSON.parse(readFileSync(0, 'utf8'))
const out = {}

{
  const JWKS = createLocalJWKSet(jwks)
  const { payload } = await jwtVerify(token, JWKS, {issuer: 'passgeni.ai', algorithms: ['ES256']})
  out.local = payload
}
{
  const JWKS = createRemoteJWKSet(new URL(jwksUrl))
  const { payload } = await jwtVerify(token, JWKS, {issuer: 'passgeni.ai', algorithms: ['ES256']})
  out.remote = payload
}
// The issuer is checked, not just read: a verifier told to expect another refuses.
try {
  await jwtVerify(token, createLocalJWKSet(jwks), {issuer: 'https://elsewhere.example', algorithms: ['ES256']})
  out.other_issuer = 'accepted'
} catch (err) {
  out.other_issuer = err.code
}
console.log(JSON.stringify(out))
"""


def _cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "passgeni-tests"


@pytest.fixture(scope="session")
def jose_modules() -> Path:
    """``node_modules`` holding ``jose`` (installed once per machine, then reused)."""
    if shutil.which("node") is None:
        # Node.js ships on every machine of this project's kind (CI's included), so this
        # runs there; the skip only spares a contributor's machine without Node.
        pytest.skip("Node.js is not installed: the seed's verification recipe is a Node.js script")
    npm = shutil.which("npm")
    assert npm is not None, "Node.js is installed without npm: cannot install the jose package"
    target = _cache_root() / f"jose-{JOSE_VERSION}"
    installed = target / "node_modules" / "jose" / "package.json"
    if not installed.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = target.parent / f".jose-{uuid.uuid4().hex}"
        staging.mkdir()
        try:
            proc = subprocess.run(
                [npm, "install", "--no-audit", "--no-fund", "--ignore-scripts",
                 "--prefix", str(staging), f"jose@{JOSE_VERSION}"],
                capture_output=True, text=True, timeout=300,
            )  # fmt: skip
            assert proc.returncode == 0, f"npm install jose failed:\n{proc.stderr[-2000:]}"
            # A complete install appears at once or not at all (parallel runs race here).
            with contextlib.suppress(OSError):
                staging.rename(target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    assert json.loads(installed.read_text())["version"] == JOSE_VERSION
    return target / "node_modules"


class _IssuerProcess(AuthorityProcess):
    def argv(self) -> list[str]:
        return [*super().argv(), "--issuer", ISSUER]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[_IssuerProcess, str]]:
    """``passgeni authority serve --issuer passgeni.ai`` in its own process, and an API key."""
    work = tmp_path_factory.mktemp("seed-authority")
    state = work / "state"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PASSGENI_")}
    env["PYTHONUNBUFFERED"] = "1"
    created = subprocess.run(
        [sys.executable, "-m", "passgeni_authority", "create-key", "--state-dir", str(state),
         "--user", "seed-recipe", "--rate-limit", "1000", "--json"],
        capture_output=True, text=True, cwd=REPO_ROOT, env=env, timeout=120, check=True,
    )  # fmt: skip
    port = free_port()
    proc = _IssuerProcess(
        port=port,
        state_dir=state,
        public_url=f"http://127.0.0.1:{port}",
        env=env,
        log=work / "authority.log",
    )
    proc.start()
    try:
        yield proc, json.loads(created.stdout)["api_key"]
    finally:
        proc.stop()


def test_the_seeds_jose_recipe_verifies_a_certificate(
    served: tuple[_IssuerProcess, str], jose_modules: Path, tmp_path: Path
) -> None:
    proc, api_key = served
    # The product's own client, told to expect the configured issuer, verifies too.
    with AuthorityClient(proc.url, api_key, issuer=ISSUER) as client:
        result = provision(client, "hipaa")
        with pytest.raises(WrongIssuer):  # the URL is not the issuer now
            verify_certificate(result.certificate.token, client.jwks(), issuer=proc.url)
    token = result.certificate.token
    # The JWKS document as any verifier fetches it.
    jwks = plain_session().get(f"{proc.url}/.well-known/jwks.json", timeout=30).json()

    (tmp_path / "node_modules").symlink_to(jose_modules, target_is_directory=True)
    script = tmp_path / "recipe.mjs"
    script.write_text(RECIPE)
    run = subprocess.run(
        ["node", str(script)],
        input=json.dumps(
            {"token": token, "jwks": jwks, "jwksUrl": f"{proc.url}/.well-known/jwks.json"}
        ),
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)
    for payload in (out["local"], out["remote"]):
        assert payload["iss"] == "passgeni.ai"
        assert payload["compliance_standard"] == "HIPAA"
        assert "NIST-800-63B" in payload["standards_met"]
        assert {"HIPAA", "PCI-DSS", "SOC2"} <= set(payload["standards_met"])
        assert payload["cert_version"] == "2.0" and payload["jti"] == result.cert_id
    assert out["other_issuer"] == "ERR_JWT_CLAIM_VALIDATION_FAILED"
