"""A lost answer loses nothing (issue #21, finding 10).

The authority commits a certificate and its answer never reaches the client (the
connection is cut after the commit). Before, the client stopped with "cannot reach"
and stored nothing, leaving a valid certificate for a password nobody kept. Now a
redemption is idempotent for its owner: the client re-sends the same request, gets
the certificate that was made, and stores the credential with it; the authority
holds exactly one certificate for it. Real authority, real OpenBao, real cut.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from passgeni_core import AuthorityClient
from passgeni_core.cli import main
from tests.reliability._proxy import TcpProxy
from tests.support import OpenBaoServer
from tests.support.authority import Authority, running_authority


@pytest.fixture
def authority(tmp_path: Path) -> Iterator[Authority]:
    state = tmp_path / "authority"
    state.mkdir()
    with running_authority(state) as served:
        yield served


def _certificates(authority: Authority) -> list[str]:
    return [item.cert_id for item in authority.client().audit(page_size=500).items]


def test_a_cut_off_redemption_is_retried_and_the_credential_stored(
    authority: Authority,
    openbao: OpenBaoServer,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    port = int(authority.url.rsplit(":", 1)[1])
    cfg = tmp_path / "config.toml"
    cfg.write_text("")
    with TcpProxy(port) as proxy:
        for name, value in {
            "PASSGENI_CONFIG": str(cfg),
            "PASSGENI_URL": proxy.url,
            "PASSGENI_ISSUER": authority.url,  # certificates name the authority, not the proxy
            "PASSGENI_API_KEY": authority.api_key,
            "HOME": str(tmp_path),
            "VAULT_ADDR": openbao.url,
            "VAULT_TOKEN": openbao.token,
        }.items():
            monkeypatch.setenv(name, value)
        # One credential (generate-certificate), then a bulk rotation (generate-certificates).
        uri = "vault://secret/lost/one#db"
        before = set(_certificates(authority))
        proxy.cut_answers(b"POST /api/generate-certificate ")
        assert main(["provision", "--preset", "soc2", "--store", uri, "--json"]) == 0
        assert proxy.cut == 1, "the answer was really lost once"
        made = set(_certificates(authority)) - before
        assert len(made) == 1, made  # the retry got the same certificate, not a second
        capsys.readouterr()
        assert main(["prove", uri, "--json"]) == 0, capsys.readouterr()
        assert made.pop() in capsys.readouterr().out

        uris = [f"vault://secret/lost/bulk-{i}" for i in range(3)]
        inventory = tmp_path / "inventory.yaml"
        inventory.write_text(
            yaml.safe_dump(
                {
                    "epoch": "2026-q4",
                    "defaults": {"preset": "soc2"},
                    "credentials": [
                        {"name": f"app-{i}", "destination": u} for i, u in enumerate(uris)
                    ],
                }
            )
        )
        before = set(_certificates(authority))
        proxy.cut_answers(b"POST /api/generate-certificates ")
        code = main(["rotate", "--json", "--no-progress", "--inventory", str(inventory)])
        assert code == 0, capsys.readouterr()
        assert proxy.cut == 2
        made = set(_certificates(authority)) - before
        assert len(made) == 3, made
        capsys.readouterr()
        for u in uris:
            assert main(["prove", u, "--json"]) == 0, capsys.readouterr()
        proofs = capsys.readouterr().out
        assert all(cert in proofs for cert in made), "each credential carries one of them"


def test_the_client_re_sends_the_same_redemption_after_a_lost_answer(
    authority: Authority,
) -> None:
    port = int(authority.url.rsplit(":", 1)[1])
    with TcpProxy(port) as proxy:
        client = AuthorityClient(proxy.url, authority.api_key, retries=2, backoff=0)
        from passgeni_core import GenerationParameters
        from tests.support.seeds import commitment

        params = GenerationParameters.for_preset("soc2")
        session = client.start_generation("soc2", params, seed_commitment=commitment())
        proxy.cut_answers(b"POST /api/generate-certificate ")
        issued = client.issue_certificate(session.session_id, label="kept")
        assert proxy.cut == 1
        assert _certificates(authority) == [issued.cert_id]
