"""The collection's module_utils adapter, in-process (fast; no ansible-playbook)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from passgeni_core import CertificateRefs, parse_store_uri
from passgeni_core import StoredCredential

BASE = {
    "preset": "soc2",
    "state": "present",
    "force": False,
    "rotate_before": 30,
    "label": None,
    "url": None,
    "api_key": None,
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


def _stored(
    *, standard: str = "soc2", days: float = 200, meta: bool = True, refs: bool = True
) -> StoredCredential:
    uri = parse_store_uri("vault://secret/app/db#password")
    full = CertificateRefs(
        cert_id="pg_x",
        cert_url="https://a.example/cert/pg_x",
        standard=standard,
        expires_at=datetime.now(UTC) + timedelta(days=days),
        version="1",
    )
    return StoredCredential(
        uri=uri,
        version="1",
        password="not-shown",
        binding_key=b"k" * 32,
        refs=CertificateRefs(cert_id="pg_x", cert_url=full.cert_url) if refs else None,
        metadata_refs=full if meta else None,
    )


def _plan(mu: ModuleType, current: Any, **params: Any) -> dict[str, Any]:
    result, password = mu._plan_offline(
        {**BASE, **params}, parse_store_uri("vault://secret/app/db#password"), current
    )
    assert password is None
    return result


@pytest.mark.parametrize(
    ("current", "params", "action"),
    [
        (None, {}, "created"),
        ("valid", {}, "none"),
        ("valid-claim-id", {}, "none"),
        ("other-claim-id", {}, "rotated"),
        ("valid", {"force": True}, "rotated"),
        ("valid", {"state": "rotated"}, "rotated"),
        ("valid", {"rotate_before": 365}, "rotated"),
        ("other-preset", {}, "rotated"),
        ("no-metadata", {}, "repaired"),
        ("no-refs", {}, "rotated"),
    ],
)
def test_check_mode_plan(
    mu: ModuleType, current: str | None, params: dict[str, Any], action: str
) -> None:
    stored = {
        None: None,
        "valid": _stored(),
        # Metadata written for a certificate that names its standard by claim id.
        "valid-claim-id": _stored(standard="SOC2"),
        "other-claim-id": _stored(standard="HIPAA"),
        "other-preset": _stored(standard="hipaa"),
        "no-metadata": _stored(meta=False),
        "no-refs": _stored(refs=False, meta=False),
    }[current]
    result = _plan(mu, stored, **params)
    assert result["action"] == action
    assert result["changed"] is (action != "none")
    assert "not-shown" not in repr(result)


def test_errors_become_failures_with_codes(mu: ModuleType) -> None:
    with pytest.raises(mu.PassgeniFailure) as info:
        mu.ensure_credential({**BASE, "preset": "nope", "destination": None})
    assert info.value.code == "unknown_preset"
    with pytest.raises(mu.PassgeniFailure) as info:
        mu.ensure_credential({**BASE, "length": 5, "destination": None})
    assert info.value.code == "preset_not_met"
    with pytest.raises(mu.PassgeniFailure) as info:
        mu.ensure_credential({**BASE, "destination": "vault://secret#x"}, check_mode=True)
    assert info.value.code == "invalid_store_uri"
    with pytest.raises(mu.PassgeniFailure) as info:
        mu.ensure_credential(
            {**BASE, "url": "http://127.0.0.1:9", "api_key": "k", "timeout": 1, "destination": None}
        )
    assert info.value.code == "authority_unavailable"


@pytest.fixture
def unconfigured(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("PASSGENI_URL", "PASSGENI_API_KEY", "PASSGENI_ISSUER", "PASSGENI_TIMEOUT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PASSGENI_CONFIG", str(tmp_path / "none.toml"))
    (tmp_path / "none.toml").write_text("")


@pytest.mark.usefixtures("unconfigured")
@pytest.mark.parametrize("check_mode", [False, True])
def test_no_authority_configured_fails_closed(mu: ModuleType, check_mode: bool) -> None:
    """Every entry point refuses without an authority; the store stays untouched."""
    from passgeni_core import open_store

    uri = "memory://ansible-fail-closed/db#password"
    calls = [
        lambda: mu.ensure_credential({**BASE, "destination": uri}, check_mode=check_mode),
        lambda: mu.ensure_credential({**BASE, "destination": None}, check_mode=check_mode),
        lambda: mu.provision_password(BASE),
        lambda: mu.verify_reference({**BASE, "cert_id": "pg_x", "online": True}),
        lambda: mu.certificate_state({**BASE, "cert_id": "pg_x", "reason": "r"}, check_mode),
    ]
    for call in calls:
        with pytest.raises(mu.PassgeniFailure) as info:
            call()
        assert info.value.code == "authority_not_configured"
        assert "url: embedded" in info.value.message and "PASSGENI_URL" in info.value.message
        assert "\n" not in info.value.message
    store = open_store("memory://")
    try:
        assert store.read(parse_store_uri(uri)) is None
    finally:
        store.close()


@pytest.mark.parametrize(
    ("url", "base", "cert_id"),
    [
        ("https://a.example/cert/pg_1", "https://a.example", "pg_1"),
        ("https://a.example/prefix/cert/pg_2/", "https://a.example/prefix", "pg_2"),
        ("http://127.0.0.1:8787/api/certificates/pg_3", "http://127.0.0.1:8787", "pg_3"),
    ],
)
def test_cert_url(mu: ModuleType, url: str, base: str, cert_id: str) -> None:
    assert mu._split_cert_url(url) == (base, cert_id)


@pytest.mark.parametrize(
    "url", ["pg_1", "ftp://a/cert/x", "https://a.example/other/pg_1", "https://a/cert/x?y=1"]
)
def test_bad_cert_url(mu: ModuleType, url: str) -> None:
    with pytest.raises(mu.PassgeniFailure) as info:
        mu._split_cert_url(url)
    assert info.value.code == "invalid_request"
