"""``data "passgeni_certificate"``: a certificate verified by the one judge, no side effect.

Give ``cert_id`` (judged by :func:`passgeni_core.workflows.assess_certificate`:
signature against the authority's JWKS, the authority's record, revocation,
expiry) or ``destination`` (the stored credential judged by
:func:`passgeni_core.workflows.assess`, binding and version included).
``require`` names a preset whose standard must be met. A certificate that
fails is a result (``valid = false`` and its ``status``), not an error: add
a ``postcondition`` to stop a run on it. A service that cannot be asked is
an error.
"""

from __future__ import annotations

from typing import Any

from attrs import define
from pyvider.cty.exceptions import CtyValidationError
from pyvider.cty.path import CtyPath
from pyvider.data_sources import BaseDataSource
from pyvider.resources import ResourceContext
from pyvider.schema import PvsSchema, a_bool, a_list, a_str, s_data_source

from ._runtime import describe, parse_destination, quiet_stdout, runtime

__all__ = ["CertificateConfig", "CertificateDataSource", "CertificateState"]


@define(frozen=True)
class CertificateConfig:
    cert_id: str | None = None
    destination: str | None = None
    require: str | None = None


@define(frozen=True)
class CertificateState:
    cert_id: str | None = None
    destination: str | None = None
    require: str | None = None
    valid: bool | None = None
    status: str | None = None
    detail: str | None = None
    cert_url: str | None = None
    standard: str | None = None
    standards_met: list[str] | None = None
    issued_at: str | None = None
    expires_at: str | None = None
    revocation_reason: str | None = None
    proof: str | None = None


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    from datetime import UTC

    text: str = value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return text


class CertificateDataSource(BaseDataSource[Any, CertificateState, CertificateConfig]):
    """The data source (registered as ``passgeni_certificate``)."""

    config_class = CertificateConfig
    state_class = CertificateState

    @classmethod
    def get_schema(cls) -> PvsSchema:
        return s_data_source(
            {
                "cert_id": a_str(optional=True, computed=True, description="Certificate id."),
                "destination": a_str(
                    optional=True, description="Or a store URI whose credential to judge."
                ),
                "require": a_str(optional=True, description="A preset whose standard must be met."),
                "valid": a_bool(computed=True, description="valid or expiring."),
                "status": a_str(computed=True, description="The judge's status."),
                "detail": a_str(computed=True, description="Why, in one line."),
                "cert_url": a_str(computed=True),
                "standard": a_str(computed=True),
                "standards_met": a_list(a_str(), computed=True),
                "issued_at": a_str(computed=True),
                "expires_at": a_str(computed=True),
                "revocation_reason": a_str(computed=True),
                "proof": a_str(
                    computed=True, description="generation, binding, or null (destination only)."
                ),
            }
        )

    async def _validate_config(self, config: CertificateConfig) -> list[str]:
        from passgeni_core import PassgeniError, get_preset

        if (config.cert_id is None) == (config.destination is None):
            raise CtyValidationError(
                "cert_id: give exactly one of cert_id and destination",
                path=CtyPath.get_attr("cert_id"),
            )
        if config.destination is not None:
            try:
                parse_destination(config.destination)
            except PassgeniError as exc:
                raise CtyValidationError(
                    f"destination: {exc.message}", path=CtyPath.get_attr("destination")
                ) from None
        if config.require is not None:
            try:
                get_preset(config.require)
            except PassgeniError as exc:
                raise CtyValidationError(
                    f"require: {exc.message}", path=CtyPath.get_attr("require")
                ) from None
        return []

    async def read(
        self, ctx: ResourceContext[CertificateConfig, Any, Any]
    ) -> CertificateState | None:
        config = ctx.config
        if config is None:
            return None
        from passgeni_core.workflows import assess, assess_certificate

        try:
            with quiet_stdout():
                rt = runtime()
                client = rt.client()
                if config.destination is not None:
                    uri = parse_destination(config.destination)
                    store = rt.store(uri)
                    current = store.read(uri)
                    if current is None:
                        from passgeni_core import InvalidRequest

                        raise InvalidRequest(f"{uri}: nothing is stored there")
                    verdict = assess(client, store.system, current, require=config.require)
                else:
                    verdict = assess_certificate(
                        client, cert_id=config.cert_id, require=config.require
                    )
                verdict.raise_for_error()
        except Exception as exc:
            ctx.add_error(*describe(exc))
            return None
        return CertificateState(
            cert_id=verdict.cert_id or config.cert_id,
            destination=config.destination,
            require=config.require,
            valid=verdict.ok,
            status=verdict.status,
            detail=verdict.detail,
            cert_url=verdict.cert_url,
            standard=verdict.standard,
            standards_met=list(verdict.standards_met),
            issued_at=_iso(verdict.issued_at),
            expires_at=_iso(verdict.expires_at),
            revocation_reason=verdict.revocation_reason,
            proof=verdict.proof,
        )
