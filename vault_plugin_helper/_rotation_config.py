"""The rotation handler's configuration, read from the environment (see
:mod:`vault_plugin_helper.rotation` for the variables), and its error."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from passgeni_core import PassgeniError

__all__ = ["ALTERNATING_USERS", "SINGLE_USER", "STRATEGIES", "RotationConfig", "RotationError"]

#: The role changes its own password (AWS's "single user" rotation).
SINGLE_USER = "single-user"
#: Two roles, ``X`` and ``X_clone``, take turns (AWS's "alternating users" rotation):
#: the pending version holds the other role's credentials, set by an admin.
ALTERNATING_USERS = "alternating-users"
STRATEGIES = (SINGLE_USER, ALTERNATING_USERS)


class RotationError(PassgeniError):
    """A rotation step cannot proceed (rotation disabled, wrong stage, bad secret)."""

    code = "rotation_error"
    http_status = 400


@dataclass(frozen=True, kw_only=True, repr=False)
class RotationConfig:
    """The handler's configuration, read once from the environment. ``repr`` hides the key."""

    preset: str
    length: int | None = None
    exclude: str = ""
    password_key: str = "password"  # noqa: S105 - a field name
    target: str = "postgresql"
    label: str | None = None
    url: str | None = None
    issuer: str | None = None
    api_key: str | None = None
    api_key_secret_arn: str | None = None
    timeout: float | None = None
    strategy: str = SINGLE_USER
    #: alternating-users: the secret holding the admin's ``username``/``password``
    #: (else the rotated secret's ``masterarn`` field, as AWS's templates name it).
    master_secret_arn: str | None = None
    #: ``sibling`` (default): the proof in ``passgeni-proof/NAME``; ``inline``: in the value.
    proof_location: str = "sibling"

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise RotationError(
                f"PASSGENI_ROTATION_STRATEGY must be one of {', '.join(STRATEGIES)}, "
                f"not {self.strategy[:40]!r}"
            )
        if self.strategy == ALTERNATING_USERS and self.target != "postgresql":
            raise RotationError(
                "the alternating-users strategy needs PASSGENI_TARGET=postgresql "
                "(it creates and alters roles as an admin)"
            )

    def __repr__(self) -> str:
        return (
            f"RotationConfig(preset={self.preset!r}, target={self.target!r}, "
            f"password_key={self.password_key!r}, url={self.url!r}, strategy={self.strategy!r})"
        )

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> RotationConfig:
        """Raises RotationError: ``PASSGENI_PRESET`` missing or a malformed value."""
        env = os.environ if environ is None else environ
        preset = env.get("PASSGENI_PRESET", "").strip()
        if not preset:
            raise RotationError("PASSGENI_PRESET is not set (e.g. soc2, pci-dss)")
        length: int | None = None
        if env.get("PASSGENI_LENGTH"):
            try:
                length = int(env["PASSGENI_LENGTH"])
            except ValueError:
                raise RotationError("PASSGENI_LENGTH must be an integer") from None
        timeout: float | None = None
        if env.get("PASSGENI_TIMEOUT"):
            try:
                timeout = float(env["PASSGENI_TIMEOUT"])
            except ValueError:
                raise RotationError("PASSGENI_TIMEOUT must be a number of seconds") from None
        key = env.get("PASSGENI_PASSWORD_KEY") or "password"
        if ".passgeni-" in key:
            raise RotationError("PASSGENI_PASSWORD_KEY may not contain '.passgeni-'")
        return cls(
            preset=preset,
            length=length,
            exclude=env.get("PASSGENI_EXCLUDE", ""),
            password_key=key,
            target=(env.get("PASSGENI_TARGET") or "postgresql").strip().lower(),
            label=env.get("PASSGENI_LABEL") or None,
            url=env.get("PASSGENI_URL") or None,
            issuer=env.get("PASSGENI_ISSUER") or None,
            api_key=env.get("PASSGENI_API_KEY") or None,
            api_key_secret_arn=env.get("PASSGENI_API_KEY_SECRET_ARN") or None,
            timeout=timeout,
            strategy=(env.get("PASSGENI_ROTATION_STRATEGY") or SINGLE_USER).strip().lower(),
            master_secret_arn=env.get("PASSGENI_MASTER_SECRET_ARN") or None,
            proof_location=_proof_location(env.get("PASSGENI_PROOF_LOCATION")),
        )


def _proof_location(value: str | None) -> str:
    chosen = (value or "sibling").strip().lower()
    if chosen not in ("sibling", "inline"):
        raise RotationError("PASSGENI_PROOF_LOCATION must be 'sibling' or 'inline'")
    return chosen
