"""Check before issuing: a token that may not write gets no certificate (issue #18, item 4).

``prepare`` asks Vault for the token's capabilities on the value and metadata paths
(``sys/capabilities-self``) before anything is certified; before, a certificate was
issued, the write refused, and the certificate revoked: noise in the audit trail.
"""

from __future__ import annotations

import pytest

from passgeni_core import StoreError, parse_store_uri, provision_into_store
from passgeni_core.cli import main
from passgeni_core.workflows import rotate
from tests.support import OpenBaoServer
from tests.support.authority import Authority
from vault_plugin_helper.vault import VaultStore

pytestmark = pytest.mark.usefixtures("vault_env", "passgeni_env")


def _token(bao: OpenBaoServer, name: str, policy: str) -> str:
    root = bao.hvac_client()
    root.sys.create_or_update_policy(name, policy)
    token: str = root.auth.token.create(policies=[name], ttl="10m")["auth"]["client_token"]
    return token


def _issued(authority: Authority) -> int:
    total: int = authority.client().audit(page_size=1).total
    return total


def test_a_read_only_token_fails_before_any_certificate(
    openbao: OpenBaoServer, authority: Authority, uid: str,
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    read_only = _token(
        openbao,
        f"ro-{uid}",
        f'path "secret/data/{uid}/*" {{ capabilities = ["read"] }}\n'
        f'path "secret/metadata/{uid}/*" {{ capabilities = ["read", "list"] }}\n',
    )
    uri = f"vault://secret/{uid}/app/db#password"
    store = VaultStore(environ={"VAULT_ADDR": openbao.url, "VAULT_TOKEN": read_only})
    before = _issued(authority)
    with pytest.raises(StoreError) as info:
        provision_into_store(authority.client(), store, uri, "soc2")
    message = info.value.message
    assert message.startswith(f"{uri}: the Vault token may not write this secret")
    assert f"create on secret/data/{uid}/app/db" in message and "nothing was certified" in message
    assert read_only not in message
    assert _issued(authority) == before  # no certificate issued, none revoked
    # The CLI: one line, exit 4, still nothing issued.
    monkeypatch.setenv("VAULT_TOKEN", read_only)
    code = main(["provision", "--preset", "soc2", "--store", uri])
    out, err = capsys.readouterr()
    assert code == 4 and out == "" and err.count("\n") == 1
    assert "[store_error]" in err and "may not write this secret" in err
    assert _issued(authority) == before


def test_a_token_that_may_create_but_not_update_cannot_rotate(
    openbao: OpenBaoServer, authority: Authority, uid: str
) -> None:
    create_only = _token(
        openbao,
        f"create-{uid}",
        f'path "secret/data/{uid}/*" {{ capabilities = ["create", "read"] }}\n'
        f'path "secret/metadata/{uid}/*" {{ capabilities = ["read", "patch", "list"] }}\n'
        f'path "secret/data/passgeni-proof/{uid}/*" {{ capabilities = ["create", "read"] }}\n',
    )
    store = VaultStore(environ={"VAULT_ADDR": openbao.url, "VAULT_TOKEN": create_only})
    uri = f"vault://secret/{uid}/svc#password"
    created = provision_into_store(authority.client(), store, uri, "soc2")
    assert created.outcome == "created"
    before = _issued(authority)
    with pytest.raises(StoreError, match=f"lacks update on secret/data/{uid}/svc"):
        rotate(authority.client(), store, uri, "soc2")
    assert _issued(authority) == before
    current = store.read(parse_store_uri(uri))
    assert current is not None and current.refs is not None
    assert current.refs.cert_id == created.cert_id  # untouched


def test_a_token_that_may_not_write_the_proof_record_fails_before_any_certificate(
    openbao: OpenBaoServer, authority: Authority, uid: str
) -> None:
    # The value and its metadata are writable, the proof record's folder is not.
    no_proof = _token(
        openbao,
        f"noproof-{uid}",
        f'path "secret/data/{uid}/*" {{ capabilities = ["create", "update", "read"] }}\n'
        f'path "secret/metadata/{uid}/*" {{ capabilities = ["read", "patch", "list"] }}\n',
    )
    store = VaultStore(environ={"VAULT_ADDR": openbao.url, "VAULT_TOKEN": no_proof})
    uri = f"vault://secret/{uid}/noproof#password"
    before = _issued(authority)
    with pytest.raises(StoreError) as info:
        provision_into_store(authority.client(), store, uri, "soc2")
    message = info.value.message
    assert message.startswith(f"{uri}: the Vault token may not write this secret")
    assert f"on secret/data/passgeni-proof/{uid}/noproof (the proof record)" in message
    assert _issued(authority) == before  # nothing certified
    # The opt-out writes everything inside the value, as before.
    inline = VaultStore(
        environ={"VAULT_ADDR": openbao.url, "VAULT_TOKEN": no_proof}, proof_location="inline"
    )
    made = provision_into_store(authority.client(), inline, uri, "soc2")
    current = inline.read(parse_store_uri(uri))
    assert current is not None and current.proof_layout == "inline"
    assert current.refs is not None and current.refs.cert_id == made.cert_id
