"""Settings shared by every tier (unit, integration, reliability).

Server fixtures live in ``tests/server_fixtures.py`` and are only visible to
the integration and reliability tiers; see ``docs/testing.md``.
"""

from __future__ import annotations

from hypothesis import HealthCheck, settings

# Property tests assert correctness, never speed: a loaded 2-core CI machine must
# not fail them on hypothesis's per-example deadline.
settings.register_profile("passgeni", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("passgeni")
