"""The boto3 clients of an ``aws-sm://`` store: its own region's and one per other
region a secret's ARN names."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from passgeni_core import StoreError

from ._aws_arn import parse_secret_arn
from ._common import scrub

__all__ = ["RegionalClients"]


def _session(
    session: Any,
    profile_name: str | None,
    connect_timeout: float,
    read_timeout: float,
    max_attempts: int,
) -> tuple[Any, Any]:
    """A boto3 session (the one given, or the default chain's) and the clients' config."""
    import boto3
    import botocore.exceptions
    from botocore.config import Config

    config = Config(
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        retries={"mode": "standard", "max_attempts": max_attempts},
    )
    try:
        return session or boto3.session.Session(profile_name=profile_name), config
    except botocore.exceptions.ProfileNotFound as exc:
        raise StoreError(f"AWS profile not found: {scrub(exc, limit=120)}") from None


class RegionalClients:
    """The Secrets Manager clients of one store: its own region's, and one per other
    region an ARN names (an ARN's calls go to the ARN's region)."""

    def __init__(
        self,
        *,
        client: Any,
        session: Any,
        region_name: str | None,
        endpoint_url: str | None,
        profile_name: str | None,
        environ: Mapping[str, str],
        timeouts: tuple[float, float, int],
    ) -> None:
        self._session: Any = None
        self._endpoint_option = endpoint_url
        self._config: Any = None
        if client is None:
            self._session, self._config = _session(session, profile_name, *timeouts)
            # botocore reads AWS_DEFAULT_REGION but not AWS_REGION, which
            # Lambda and the other AWS SDKs set: honour both.
            region = region_name or self._session.region_name or environ.get("AWS_REGION")
            client = self._new_client(region or None)
        self._client = client
        self.region = getattr(getattr(client, "meta", None), "region_name", None)
        self.endpoint = getattr(getattr(client, "meta", None), "endpoint_url", None)
        self._regional: dict[str, Any] = {}

    def _new_client(self, region: str | None) -> Any:
        import botocore.exceptions

        try:
            return self._session.client(
                "secretsmanager",
                region_name=region,
                endpoint_url=self._endpoint_option,
                config=self._config,
            )
        except botocore.exceptions.NoRegionError:
            raise StoreError(
                "no AWS region: set AWS_REGION (or AWS_DEFAULT_REGION, or a profile's region)"
            ) from None

    def for_secret(self, secret_id: object) -> Any:
        """The client for ``secret_id``."""
        arn = parse_secret_arn(secret_id) if isinstance(secret_id, str) else None
        if arn is None or arn.region == self.region:
            return self._client
        if arn.region not in self._regional:
            if self._session is None:
                raise StoreError(
                    f"{arn.arn} is in region {arn.region} but the store was given a client for "
                    f"{self.region}: pass a client for {arn.region}, or none"
                )
            self._regional[arn.region] = self._new_client(arn.region)
        return self._regional[arn.region]

    def close(self) -> None:
        for client in (self._client, *self._regional.values()):
            close = getattr(client, "close", None)
            if callable(close):
                close()
