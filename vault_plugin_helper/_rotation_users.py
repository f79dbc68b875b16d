"""The alternating-users strategy of the rotation handler (as AWS's
``...RotationMultiUser`` templates do it).

Two database roles take turns: ``X`` and ``X_clone``. ``createSecret`` writes
the pending version with the *other* role's name (``X`` <-> ``X_clone``) and a
new password; ``setSecret`` logs in as the admin (the secret named by the
rotated secret's ``masterarn`` field, else ``PASSGENI_MASTER_SECRET_ARN``:
a JSON object with ``username`` and ``password``), creates the clone on the
first rotation (``LOGIN``, granted the original role's membership) or sets
its password. The current role and password keep working until the next
rotation: applications holding them are never cut off mid-rotation.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ._rotation_config import RotationConfig, RotationError

__all__ = ["CLONE_SUFFIX", "master_credentials", "other_user"]

CLONE_SUFFIX = "_clone"
_MAX_ROLE = 63  # PostgreSQL's NAMEDATALEN - 1


def other_user(username: object) -> str:
    """``X`` -> ``X_clone`` and ``X_clone`` -> ``X``.

    Raises:
        RotationError: no username, or the clone's name would be too long.
    """
    if not isinstance(username, str) or not username:
        raise RotationError("alternating-users: the secret has no username")
    if username.endswith(CLONE_SUFFIX) and len(username) > len(CLONE_SUFFIX):
        return username[: -len(CLONE_SUFFIX)]
    clone = username + CLONE_SUFFIX
    if len(clone) > _MAX_ROLE:
        raise RotationError(
            f"alternating-users: {clone[:40]!r}... would exceed PostgreSQL's {_MAX_ROLE}-character "
            "role names; shorten the username"
        )
    return clone


def master_credentials(
    sm: Any, secret: Mapping[str, Any], config: RotationConfig
) -> tuple[str, str, str]:
    """``(master ARN, admin username, admin password)`` for setSecret.

    Raises:
        RotationError: no master secret named, or it is unreadable or malformed
            (the message names the ARN, never a value).
    """
    arn = secret.get("masterarn") or config.master_secret_arn
    if not isinstance(arn, str) or not arn:
        raise RotationError(
            "alternating-users: the secret has no masterarn field and PASSGENI_MASTER_SECRET_ARN "
            "is not set (the admin that creates the clone and sets its password)"
        )
    try:
        raw = sm.get_secret_value(SecretId=arn, VersionStage="AWSCURRENT").get("SecretString")
        data = json.loads(raw) if isinstance(raw, str) else None
    except ValueError:
        data = None
    except Exception as exc:
        code = getattr(exc, "response", {}).get("Error", {}).get("Code", type(exc).__name__)
        raise RotationError(
            f"alternating-users: cannot read master secret {arn} ({code})"
        ) from None
    user = data.get("username") if isinstance(data, dict) else None
    password = data.get("password") if isinstance(data, dict) else None
    if not isinstance(user, str) or not user or not isinstance(password, str) or not password:
        raise RotationError(
            f"alternating-users: master secret {arn} is not a JSON object with username and password"
        )
    return arn, user, password
