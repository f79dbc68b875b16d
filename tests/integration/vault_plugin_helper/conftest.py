"""Store-test fixtures (the real authority with a shiftable clock, store environments)."""

from tests.integration.vault_plugin_helper.fixtures import *  # noqa: F403
