"""The provider's validation (no I/O, no Terraform): each bad value names its attribute."""

from __future__ import annotations

from typing import Any

import pytest
from pyvider.cty.exceptions import CtyValidationError

from terraform_external.cli import reattach_value
from terraform_external.provider._credential import CredentialConfig, check_config

GOOD: dict[str, Any] = {"destination": "vault://secret/app/db#password", "preset": "soc2"}


def test_a_good_configuration_passes() -> None:
    check_config(CredentialConfig(**GOOD, keeper="2026-11", length=24, on_destroy="keep"))


@pytest.mark.parametrize(
    ("changes", "attribute"),
    [
        ({"preset": "sox9"}, "preset"),
        ({"length": 4}, "length"),
        ({"length": 20.5}, "length"),
        ({"keeper": " spaced"}, "keeper"),
        ({"keeper": "x" * 101}, "keeper"),
        ({"on_destroy": "burn"}, "on_destroy"),
        ({"label": "a\nb"}, "label"),
        ({"destination": "vault://secret"}, "destination"),
        ({"destination": "ftp://host/x#k"}, "destination"),
        ({"destination": "memory://x/y#k"}, "destination"),
    ],
)
def test_each_bad_value_names_its_attribute(changes: dict[str, Any], attribute: str) -> None:
    with pytest.raises(CtyValidationError) as caught:
        check_config(CredentialConfig(**{**GOOD, **changes}))
    assert caught.value.message.startswith(f"{attribute}: ")
    assert attribute in str(caught.value.path)


def test_reattach_value_from_a_handshake() -> None:
    import json

    value = json.loads(reattach_value("1|6|unix|/tmp/x/p.sock|grpc|\n", 42))
    entry = value["registry.terraform.io/passgeni/passgeni"]
    assert entry == {
        "Protocol": "grpc",
        "ProtocolVersion": 6,
        "Pid": 42,
        "Test": True,
        "Addr": {"Network": "unix", "String": "/tmp/x/p.sock"},
    }
    with pytest.raises(ValueError):
        reattach_value("Traceback (most recent call last):", 1)
