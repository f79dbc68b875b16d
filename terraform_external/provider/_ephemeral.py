"""``ephemeral "passgeni_credential"``: the stored password, for write-only attributes.

Opening it reads ``destination`` and asks the one judge
(:func:`passgeni_core.workflows.assess`, with ``preset`` when given): a value
that is not covered by a valid (or expiring) certificate is refused with its
status, so an uncertified or hand-changed password is never handed on. The
result's ``password`` is sensitive and, being ephemeral, Terraform keeps it
out of the state and of saved plans: feed it to a ``*_wo`` attribute (e.g.
``password_wo``) of the resource that needs it. Nothing is written anywhere.
"""

from __future__ import annotations

from datetime import UTC, datetime

from attrs import define
from pyvider.cty.exceptions import CtyValidationError
from pyvider.cty.path import CtyPath
from pyvider.ephemerals import BaseEphemeralResource, EphemeralResourceContext
from pyvider.resources import PrivateState
from pyvider.schema import PvsSchema, a_str, s_resource

from ._runtime import as_diagnostic, parse_destination, quiet_stdout, runtime

__all__ = ["CredentialEphemeral", "EphemeralConfig", "EphemeralResult"]

#: Nothing to renew (no lease is taken): a time no Terraform run reaches.
_NO_RENEWAL = datetime(9999, 1, 1, tzinfo=UTC)


@define(frozen=True)
class EphemeralConfig:
    destination: str | None = None
    preset: str | None = None
    cert_id: str | None = None


@define(frozen=True, repr=False)
class EphemeralResult:
    destination: str | None = None
    preset: str | None = None
    cert_id: str | None = None
    password: str | None = None
    cert_url: str | None = None
    status: str | None = None
    store_version: str | None = None

    def __repr__(self) -> str:  # never the password
        return f"EphemeralResult(destination={self.destination!r}, cert_id={self.cert_id!r})"


class CredentialEphemeral(BaseEphemeralResource[EphemeralResult, PrivateState, EphemeralConfig]):
    """The ephemeral resource (registered as ``passgeni_credential``)."""

    config_class = EphemeralConfig
    result_class = EphemeralResult

    @classmethod
    def get_schema(cls) -> PvsSchema:
        return s_resource(
            {
                "destination": a_str(required=True, description="Store URI to open."),
                "preset": a_str(optional=True, description="The preset it must be certified for."),
                "cert_id": a_str(
                    optional=True,
                    computed=True,
                    description="The certificate the stored credential must carry; "
                    "reference passgeni_credential.NAME.cert_id to open it only once applied.",
                ),
                "password": a_str(computed=True, sensitive=True, description="The password."),
                "cert_url": a_str(computed=True),
                "status": a_str(computed=True, description="valid or expiring."),
                "store_version": a_str(computed=True),
            }
        )

    async def validate(self, config: EphemeralConfig | None) -> list[str]:
        if config is None:
            return []
        from passgeni_core import PassgeniError, get_preset

        try:
            if config.destination is not None:
                parse_destination(config.destination)
        except PassgeniError as exc:
            raise CtyValidationError(
                f"destination: {exc.message}", path=CtyPath.get_attr("destination")
            ) from None
        try:
            if config.preset is not None:
                get_preset(config.preset)
        except PassgeniError as exc:
            raise CtyValidationError(
                f"preset: {exc.message}", path=CtyPath.get_attr("preset")
            ) from None
        return []

    async def open(
        self,
        # pyvider 0.8 bounds the private-state parameter to attrs classes; None is what
        # its own examples pass for "no private state".
        ctx: EphemeralResourceContext[EphemeralConfig, None],  # type: ignore[type-var]
    ) -> tuple[EphemeralResult, PrivateState, datetime]:
        config = ctx.config
        assert config is not None and config.destination is not None
        from passgeni_core import InvalidRequest
        from passgeni_core.workflows import assess

        try:
            with quiet_stdout():
                uri = parse_destination(config.destination)
                rt = runtime()
                store = rt.store(uri)
                current = store.read(uri)
                if current is None or current.password is None:
                    raise InvalidRequest(f"{uri}: nothing is stored there")
                verdict = assess(rt.client(), store.system, current, preset=config.preset)
                verdict.raise_for_error()
                if not verdict.value_covered:
                    raise InvalidRequest(
                        f"{uri}: refusing to open a credential that is {verdict.status}: "
                        f"{verdict.detail}"
                    )
                if config.cert_id is not None and verdict.cert_id != config.cert_id:
                    raise InvalidRequest(
                        f"{uri}: the stored credential carries certificate {verdict.cert_id}, "
                        f"not {config.cert_id}"
                    )
        except Exception as exc:
            raise as_diagnostic(exc) from None
        result = EphemeralResult(
            destination=config.destination,
            preset=config.preset,
            password=current.password,
            cert_id=verdict.cert_id,
            cert_url=verdict.cert_url,
            status=verdict.status,
            store_version=current.version,
        )
        return result, PrivateState(), _NO_RENEWAL

    async def renew(
        self, ctx: EphemeralResourceContext[None, PrivateState]
    ) -> tuple[PrivateState, datetime]:
        # Nothing is leased: a run long enough to ask keeps what it opened.
        return PrivateState(), _NO_RENEWAL

    async def close(self, ctx: EphemeralResourceContext[None, PrivateState]) -> None:
        return None
