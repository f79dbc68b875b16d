"""Store-test fixtures (the real authority with a shiftable clock, store environments)."""

from tests.integration.vault_plugin_helper.fixtures import *  # noqa: F403
from tests.integration.vault_plugin_helper.rotation_support import (  # noqa: F401
    config,
    lambda_arn,
    pg,
    rotation,
)
