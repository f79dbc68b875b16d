"""Check mode predicts the real run; a hand-changed value is a conflict (issue #18, item 10).

In-process through the installed collection's module_utils, against a served authority and
the ``memory://`` store (the same backend contract as Vault's): a revoked certificate is
``changed`` in check mode as in the real run; a value changed by hand fails both with
``store_conflict`` unless ``force: true``, and is never overwritten silently.
"""

from __future__ import annotations

import secrets
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from passgeni_core import AuthorityClient, open_store, parse_store_uri
from passgeni_core.stores import MemoryStore

BASE = {
    "preset": "soc2",
    "state": "present",
    "force": False,
    "rotate_before": 30,
    "label": None,
    "timeout": None,
    "length": None,
    "exclude": "",
    "exclude_lookalikes": False,
    "special_chars": None,
}


@pytest.fixture(scope="module")
def mu(installed_collection: Path) -> Iterator[ModuleType]:
    sys.path.insert(0, str(installed_collection))
    try:
        from ansible_collections.passgeni.compliance.plugins.module_utils import passgeni

        yield passgeni
    finally:
        sys.path.remove(str(installed_collection))


def _params(authority: Any, destination: str, **more: Any) -> dict[str, Any]:
    return {
        **BASE,
        "url": authority.base_url,
        "api_key": authority.api_key,
        "destination": destination,
        **more,
    }


def _both(mu: ModuleType, params: dict[str, Any]) -> tuple[Any, Any]:
    """(check-mode outcome, real outcome): a result dict, or the failure's code."""
    out = []
    for check_mode in (True, False):
        try:
            result, _ = mu.ensure_credential(params, check_mode=check_mode)
        except mu.PassgeniFailure as failure:
            out.append(("failed", failure.code, failure.message))
        else:
            out.append((result["action"], result["changed"], result["reason"]))
    return out[0], out[1]


def test_check_mode_predicts_a_revoked_certificate(mu: ModuleType, authority: Any) -> None:
    uri = f"memory://ansible-check/{secrets.token_hex(4)}/db#password"
    params = _params(authority, uri)
    created, _ = mu.ensure_credential(params)
    check, real = _both(mu, params)
    assert check[:2] == real[:2] == ("none", False)
    with AuthorityClient(authority.base_url, authority.api_key) as client:
        client.revoke(created["cert_id"], "key compromise")
    result, _ = mu.ensure_credential(params, check_mode=True)
    assert result["action"] == "rotated" and result["changed"] is True
    assert "revoked" in result["reason"]
    real, _ = mu.ensure_credential(params)
    assert real["action"] == "rotated" and real["cert_id"] != created["cert_id"]


def test_a_hand_changed_value_is_a_conflict_in_both_runs(mu: ModuleType, authority: Any) -> None:
    uri = f"memory://ansible-check/{secrets.token_hex(4)}/db#password"
    params = _params(authority, uri)
    mu.ensure_credential(params)
    parsed = parse_store_uri(uri)
    store = open_store(parsed)
    assert isinstance(store, MemoryStore)
    store.put(parsed, {"password": "set-by-hand-0123456789"})
    check, real = _both(mu, params)
    assert check[:2] == real[:2] == ("failed", "store_conflict")
    assert "force: true" in real[2] and "set-by-hand" not in real[2]
    current = store.read(parsed)
    assert current is not None and current.password == "set-by-hand-0123456789"  # untouched
    # force: true is the rotation the operator asks for, predicted as such.
    forced = {**params, "force": True}
    check, real = _both(mu, forced)
    assert check[:2] == real[:2] == ("rotated", True)
    current = store.read(parsed)
    assert current is not None and current.password != "set-by-hand-0123456789"


def test_without_an_authority_check_mode_decides_from_the_store(
    mu: ModuleType, authority: Any
) -> None:
    uri = f"memory://ansible-check/{secrets.token_hex(4)}/db#password"
    mu.ensure_credential(_params(authority, uri))
    dead = {**_params(authority, uri), "url": "http://127.0.0.1:9", "timeout": 1}
    result, _ = mu.ensure_credential(dead, check_mode=True)
    assert result["action"] == "none" and "could not be asked" in result["reason"]
