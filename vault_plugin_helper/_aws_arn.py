"""Where an ``aws-sm://`` URI points: a secret's name, or its full ARN.

``aws-sm://NAME``
    1-512 letters, digits and ``/ _ + = . @ -``, as AWS allows; the secret is
    in the store's region and account (the SDK's default chain).
``aws-sm://arn:PARTITION:secretsmanager:REGION:ACCOUNT:secret:NAME-xxxxxx``
    the full ARN (``NAME`` and the 6-character suffix AWS appends), for a
    secret in another region or account (cross-account access by its resource
    policy). Calls go to the ARN's region, whatever the store's default. A
    partial ARN (no suffix) is refused: AWS resolves it by prefix, so it may
    name another secret.

The ARN's colons are fine in a store URI: the grammar (``scheme://location[#key]``)
splits only at ``://`` and ``#``, and an ARN holds neither.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["SecretArn", "SecretsManagerLocations", "parse_secret_arn"]

_NAME = r"[A-Za-z0-9/_+=.@-]{1,512}"
SECRET_NAME = re.compile(_NAME)
_ARN = re.compile(
    r"arn:(?P<partition>aws(?:-[a-z]+)*):secretsmanager:(?P<region>[a-z]{2}(?:-[a-z]+)+-\d{1,2}):"
    r"(?P<account>\d{12}):secret:(?P<name>" + _NAME + r")"
)
_SUFFIX = re.compile(r".+-[A-Za-z0-9]{6}")


@dataclass(frozen=True)
class SecretArn:
    """A parsed Secrets Manager secret ARN."""

    arn: str
    partition: str
    region: str
    account: str
    #: The name with AWS's ``-xxxxxx`` suffix.
    name_with_suffix: str

    @property
    def name(self) -> str:
        """The secret's name (the suffix removed)."""
        return self.name_with_suffix[:-7]


def parse_secret_arn(location: str) -> SecretArn | None:
    """The ARN ``location`` spells, None if it does not start with ``arn:``.

    Raises:
        ValueError: it starts with ``arn:`` but is no full Secrets Manager secret ARN.
    """
    if not location.startswith("arn:"):
        return None
    match = _ARN.fullmatch(location)
    if match is None:
        raise ValueError(
            "an ARN here is arn:PARTITION:secretsmanager:REGION:ACCOUNT:secret:NAME-xxxxxx"
        )
    name = match["name"]
    if not _SUFFIX.fullmatch(name) or "//" in name:
        raise ValueError(
            "a partial ARN (without the secret's 6-character suffix) may resolve to another "
            "secret: use the full ARN from describe-secret, or the secret's name"
        )
    return SecretArn(location, match["partition"], match["region"], match["account"], name)


class SecretsManagerLocations:
    """``aws-sm://NAME`` or ``aws-sm://ARN``; the prefix form is ``aws-sm://[PREFIX]``."""

    form = "aws-sm://NAME#KEY or aws-sm://arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME-xxxxxx"
    incomplete = "missing the secret NAME"

    def check(self, location: str) -> bool:
        if parse_secret_arn(location) is not None:
            return True
        if location and not SECRET_NAME.fullmatch(location):
            raise ValueError(
                "an AWS secret name is 1-512 letters, digits and / _ + = . @ - "
                "(or give the secret's full ARN)"
            )
        if "//" in location:
            raise ValueError("empty name segment ('//')")
        return bool(location)
