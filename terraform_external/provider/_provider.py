"""The provider itself: its configuration block and what ``configure`` does with it."""

from __future__ import annotations

from typing import Any

from pyvider.capabilities import BaseCapability
from pyvider.providers import BaseProvider, ProviderMetadata
from pyvider.schema import PvsAttribute, a_num, a_str

from ._runtime import Settings, as_diagnostic, runtime

__all__ = ["PROVIDER_NAME", "PassgeniConfig", "PassgeniProvider"]

PROVIDER_NAME = "passgeni"


class PassgeniConfig(BaseCapability):
    """The ``provider "passgeni" { ... }`` attributes (each optional; the environment fills in)."""

    def __init__(self, config: Any | None = None) -> None:
        self.config = config

    @staticmethod
    def get_schema_contribution() -> dict[str, PvsAttribute]:
        return {
            "authority_url": a_str(
                optional=True,
                description='The authority (else PASSGENI_URL, else the config file; "embedded" '
                "runs a throwaway one in-process). The API key comes only from PASSGENI_API_KEY "
                "or the config file, never from here.",
            ),
            "issuer": a_str(
                optional=True, description="The issuer certificates must name (PASSGENI_ISSUER)."
            ),
            "timeout": a_num(
                optional=True, description="Seconds per authority request (PASSGENI_TIMEOUT)."
            ),
        }


class PassgeniProvider(BaseProvider):
    """``passgeni/passgeni``."""

    def __init__(self) -> None:
        from importlib.metadata import PackageNotFoundError, version

        try:
            release = version("passgeni")
        except PackageNotFoundError:  # pragma: no cover - a source tree without metadata
            release = "0.0.0"
        super().__init__(metadata=ProviderMetadata(name=PROVIDER_NAME, version=release))

    async def configure(self, config: Any) -> None:
        timeout = getattr(config, "timeout", None)
        settings = Settings(
            authority_url=getattr(config, "authority_url", None) or None,
            issuer=getattr(config, "issuer", None) or None,
            timeout=None if timeout is None else float(timeout),
        )
        configured: Settings | None = getattr(self, "_passgeni_settings", None)
        if configured is None:
            await super().configure(config)
            self._passgeni_settings = settings
            runtime().configure(settings)
            return
        # A served provider (passgeni terraform serve-provider) is configured by every
        # command: the same block is fine; another one must not be silently ignored.
        if settings != configured:
            import os

            from passgeni_core import InvalidRequest

            if os.environ.get("PASSGENI_PROVIDER_SERVED_BY") == "run":
                message = (
                    "one provider process serves this command (`passgeni terraform run`) and "
                    "was configured with another provider block: for several differently "
                    "configured passgeni providers set PASSGENI_TERRAFORM_ONE_PROCESS=0"
                )
            else:
                message = (
                    "this provider process was configured with another provider block (it is "
                    "served by `passgeni terraform serve-provider`): restart it for the new one"
                )
            raise as_diagnostic(InvalidRequest(message))
