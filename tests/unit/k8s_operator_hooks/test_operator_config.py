"""The operator's settings are checked before kopf starts (no cluster, no authority)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from k8s_operator_hooks._config import parse_namespaces
from k8s_operator_hooks.operator import InvalidSetting, OperatorConfig
from passgeni_core import CERT_LIFETIME


def test_the_defaults() -> None:
    config = OperatorConfig.from_environ({})
    assert config.rotate_window == timedelta(days=30) and config.check_interval == 3600.0


@pytest.mark.parametrize("days", ["365", "365.0", "400", "1000"])
def test_a_window_not_shorter_than_the_certificate_lifetime_is_refused(days: str) -> None:
    with pytest.raises(InvalidSetting) as info:
        OperatorConfig.from_environ({"PASSGENI_OPERATOR_ROTATE_WINDOW_DAYS": days})
    message = info.value.message
    assert "\n" not in message and info.value.code == "invalid_request"
    assert f"({float(days):g} days)" in message and "(365 days)" in message
    assert "PASSGENI_OPERATOR_ROTATE_WINDOW_DAYS" in message


def test_a_flag_wins_over_the_environment() -> None:
    env = {"PASSGENI_OPERATOR_ROTATE_WINDOW_DAYS": "400", "PASSGENI_OPERATOR_CHECK_INTERVAL": "5"}
    config = OperatorConfig.from_environ(env, rotate_window_days=10)
    assert config.rotate_window == timedelta(days=10) and config.check_interval == 5.0
    with pytest.raises(InvalidSetting):
        OperatorConfig.from_environ({}, rotate_window_days=CERT_LIFETIME.days)


def test_just_under_the_lifetime_is_allowed() -> None:
    window = CERT_LIFETIME - timedelta(hours=1)
    assert OperatorConfig(rotate_window=window).rotate_window == window


@pytest.mark.parametrize("text", ["soon", "-1", "nan", "inf"])
def test_numbers_are_checked(text: str) -> None:
    with pytest.raises(InvalidSetting) as info:
        OperatorConfig.from_environ({"PASSGENI_OPERATOR_CHECK_INTERVAL": text})
    assert "PASSGENI_OPERATOR_CHECK_INTERVAL" in info.value.message


def test_namespaces() -> None:
    assert parse_namespaces(None) == () and parse_namespaces("  ") == ()
    assert parse_namespaces("payments, billing team-*") == ("payments", "billing", "team-*")
    with pytest.raises(InvalidSetting, match="PASSGENI_OPERATOR_NAMESPACES"):
        parse_namespaces("Payments")


def test_the_watch_scope() -> None:
    from k8s_operator_hooks._config import WatchScope, watch_scope

    env = {"PASSGENI_OPERATOR_NAMESPACES": "payments,billing"}
    assert watch_scope((), {}) == WatchScope((), scanning=False)  # every namespace, -A
    assert watch_scope((), {"PASSGENI_OPERATOR_NAMESPACES": "*"}).clusterwide
    assert watch_scope((), env) == WatchScope(("payments", "billing"), scanning=False)
    assert watch_scope(("only",), env) == WatchScope(("only",), scanning=False)  # flags win
    # A pattern needs kopf to list and watch namespaces.
    assert watch_scope(("team-*",), {}) == WatchScope(("team-*",), scanning=True)
    with pytest.raises(InvalidSetting, match="--namespace"):
        watch_scope(("Bad_NS",), {})
    with pytest.raises(InvalidSetting, match="cannot be combined"):
        watch_scope(("*", "payments"), {})
