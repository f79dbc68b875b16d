"""Settings shared by every tier (unit, integration, reliability).

Server fixtures live in ``tests/server_fixtures.py`` and are only visible to
the integration and reliability tiers; see ``docs/testing.md``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

# Property tests assert correctness, never speed: a loaded 2-core CI machine must
# not fail them on hypothesis's per-example deadline.
settings.register_profile("passgeni", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("passgeni")


@pytest.fixture(autouse=True)
def _logging_left_as_found() -> Iterator[None]:
    """Whatever a test's code configures in ``logging`` (kopf, uvicorn, a CLI's
    ``--log-format``) is undone after it: a handler left on a logger writes to the
    stream that test captured, closed by the time a later test logs, and "--- Logging
    error ---" tracebacks then land in that later test's output."""
    manager = logging.Logger.manager
    loggers = [logging.getLogger(), *manager.loggerDict.values()]
    saved = {
        id(lg): (lg, list(lg.handlers), lg.level, lg.propagate, lg.disabled)
        for lg in loggers
        if isinstance(lg, logging.Logger)
    }
    yield
    for lg in [logging.getLogger(), *manager.loggerDict.values()]:
        if not isinstance(lg, logging.Logger):
            continue
        before = saved.get(id(lg))
        if before is None:
            lg.handlers = []  # a logger this test created keeps no handler
            continue
        _, handlers, level, propagate, disabled = before
        lg.handlers, lg.level, lg.propagate, lg.disabled = handlers, level, propagate, disabled
