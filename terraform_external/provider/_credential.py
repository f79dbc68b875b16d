"""``resource "passgeni_credential"``: a certified credential at a store destination.

* **apply** (create or replace) generates the password locally, certifies it
  and stores it at ``destination`` with the certificate references beside it
  (:func:`passgeni_core.workflows.ensure_rotated`: a credential already
  certified for the same preset and ``keeper`` is adopted, not rotated);
* **refresh** (every ``plan``) reads the store and asks the one judge
  (:func:`passgeni_core.workflows.assess`); it writes nothing. A stored value
  that is no longer covered (changed by hand, revoked, expired, gone) shows
  in ``status`` and the plan replaces the resource;
* **destroy** revokes the certificate recorded in the state
  (``on_destroy = "revoke"``, the default) or leaves it (``"keep"``); the
  stored value is left in the store either way (deleting secrets is the
  store's own resource's business).

``store_options`` passes the destination backend's options (the CLI's
``--store-option``; ``aws-sm``'s ``kms_key_id`` for a secret it creates),
checked by name at validate and by value when the store is opened at plan.

The state holds references only: cert id and URL, expiry, the store
version, the standards met and the judge's status. Never the password, the
seed or a binding key.
"""

from __future__ import annotations

from typing import Any

from attrs import define, evolve
from pyvider.cty.exceptions import CtyValidationError
from pyvider.cty.path import CtyPath
from pyvider.resources import BaseResource, ResourceContext
from pyvider.schema import PvsSchema, a_list, a_map, a_num, a_str, a_unknown, s_resource

from ._runtime import describe, parse_destination, quiet_stdout, runtime

__all__ = ["CredentialConfig", "CredentialResource", "CredentialState"]

#: The judge's statuses under which the stored value is still what the state says.
COVERED = ("valid", "expiring")
ON_DESTROY = ("revoke", "keep")
COMPUTED = ("cert_id", "cert_url", "expires_at", "store_version", "standards_met", "status")
REVOKE_REASON_DESTROYED = "terraform destroy"


@define(frozen=True)
class CredentialConfig:
    destination: str | None = None
    preset: str | None = None
    keeper: str | None = None
    length: int | None = None
    exclude: str | None = None
    label: str | None = None
    on_destroy: str | None = None
    store_options: dict[str, str] | None = None


@define(frozen=True)
class CredentialState:
    destination: str | None = None
    preset: str | None = None
    keeper: str | None = None
    length: int | None = None
    exclude: str | None = None
    label: str | None = None
    on_destroy: str | None = None
    store_options: dict[str, str] | None = None
    cert_id: str | None = None
    cert_url: str | None = None
    expires_at: str | None = None
    store_version: str | None = None
    standards_met: list[str] | None = None
    status: str | None = None


def _bad(attribute: str, message: str) -> CtyValidationError:
    return CtyValidationError(f"{attribute}: {message}", path=CtyPath.get_attr(attribute))


def check_config(config: CredentialConfig) -> None:
    """Validate without I/O; raises a diagnostic that names the attribute."""
    from passgeni_core import GenerationParameters, PassgeniError
    from passgeni_core.workflows import check_keeper

    if config.destination is not None:
        try:
            parse_destination(config.destination)
        except PassgeniError as exc:
            raise _bad("destination", exc.message) from None
    if config.length is not None and config.length != int(config.length):
        raise _bad("length", f"must be a whole number, got {config.length}")
    if config.preset is not None:
        try:
            GenerationParameters.for_preset(
                config.preset,
                length=None if config.length is None else int(config.length),
                exclude=config.exclude or "",
            )
        except PassgeniError as exc:
            attribute = (
                "preset"
                if exc.code == "unknown_preset"
                else ("length" if config.length is not None else "exclude")
            )
            raise _bad(attribute, exc.message) from None
    if config.keeper is not None:
        try:
            check_keeper(config.keeper)
        except PassgeniError as exc:
            raise _bad("keeper", exc.message) from None
    if config.on_destroy is not None and config.on_destroy not in ON_DESTROY:
        raise _bad("on_destroy", f'must be "revoke" or "keep", got {config.on_destroy[:40]!r}')
    if config.label is not None and (len(config.label) > 150 or not config.label.isprintable()):
        raise _bad("label", "must be at most 150 printable characters")
    if config.store_options and config.destination is not None:
        try:
            store_options(config.destination, config.store_options)
        except PassgeniError as exc:
            raise _bad("store_options", exc.message) from None


def store_options(destination: str, given: dict[str, str] | None) -> dict[str, str]:
    """``store_options`` checked against the names the destination's backend takes (the
    CLI's ``--store-option``, Ansible's ``store_options``); values are checked when the
    store is opened."""
    from passgeni_core import store_settings

    if not given:
        return {}
    return store_settings(parse_destination(destination).scheme, given)


def check_store(config: CredentialConfig) -> tuple[str, str] | None:
    """Open the destination's store with ``store_options`` (no request is sent): a bad
    value (a KMS key id with spaces...) is a diagnostic naming the attribute at plan."""
    if not config.store_options or config.destination is None:
        return None
    from passgeni_core import PassgeniError

    try:
        with quiet_stdout():
            uri = parse_destination(config.destination)
            runtime().store(uri, store_options(config.destination, config.store_options))
    except PassgeniError as exc:
        return f"store_options: {exc.message}", f"passgeni: {exc.code}"
    except Exception as exc:
        return describe(exc)
    return None


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    from datetime import UTC

    text: str = value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return text


def refresh(state: CredentialState) -> tuple[CredentialState | None, tuple[str, str] | None]:
    """Read the destination and judge it (writes nothing): the refreshed state (``None``:
    gone from the store), or the prior state and a diagnostic (summary, detail)."""
    from passgeni_core import get_preset
    from passgeni_core.workflows import assess

    assert state.destination is not None
    try:
        with quiet_stdout():
            uri = parse_destination(state.destination)
            rt = runtime()
            store = rt.store(uri, store_options(state.destination, state.store_options))
            current = store.read(uri)
            if current is None:
                # Gone from the store: the plan creates it again.
                return None, None
            verdict = assess(
                rt.client(),
                store.system,
                current,
                preset=None if state.preset is None else get_preset(state.preset).id,
                keeper=state.keeper,
            )
            verdict.raise_for_error()  # never plan a replacement because a service failed
    except Exception as exc:
        return state, describe(exc)
    covered = verdict.value_covered
    return (
        evolve(
            state,
            status=verdict.status,
            store_version=current.version,
            cert_id=verdict.cert_id if covered else state.cert_id,
            cert_url=(verdict.cert_url or state.cert_url) if covered else state.cert_url,
            expires_at=_iso(verdict.expires_at) if covered else state.expires_at,
            standards_met=list(verdict.standards_met) if covered else state.standards_met,
        ),
        None,
    )


async def _checked_store(ctx: ResourceContext[CredentialConfig, CredentialState, Any]) -> None:
    if ctx.config is not None and ctx.config.store_options:
        import asyncio

        error = await asyncio.to_thread(check_store, ctx.config)
        if error is not None:
            ctx.add_error(*error)


class CredentialResource(BaseResource[Any, CredentialState, CredentialConfig]):
    """The managed resource (registered as ``passgeni_credential``)."""

    config_class = CredentialConfig
    state_class = CredentialState

    @classmethod
    def get_schema(cls) -> PvsSchema:
        return s_resource(
            {
                "destination": a_str(
                    required=True,
                    requires_replace=True,
                    description="Store URI: vault://MOUNT/PATH#KEY, aws-sm://NAME#KEY, "
                    "k8s://NAMESPACE/NAME#KEY.",
                ),
                "preset": a_str(
                    required=True,
                    requires_replace=True,
                    description="Compliance preset (soc2, pci-dss, hipaa, nist-800-63b...).",
                ),
                "keeper": a_str(
                    optional=True,
                    requires_replace=True,
                    description="Rotation epoch of your choosing; change it to rotate.",
                ),
                "length": a_num(
                    optional=True, requires_replace=True, description="Password length."
                ),
                "exclude": a_str(
                    optional=True,
                    requires_replace=True,
                    description="Characters the password must not contain.",
                ),
                "label": a_str(
                    optional=True,
                    requires_replace=True,
                    description="Label written into the certificate (before keeper=K).",
                ),
                "on_destroy": a_str(
                    optional=True,
                    description='"revoke" (default): revoke the certificate on destroy or '
                    'replace; "keep": leave it valid. The stored value is never deleted.',
                ),
                "store_options": a_map(
                    a_str(),
                    optional=True,
                    description="Options of the destination's store backend, as the CLI's "
                    "--store-option (aws-sm: kms_key_id for secrets this creates, region_name, "
                    "endpoint_url, profile_name). Changes apply in place: an existing secret "
                    "keeps its KMS key.",
                ),
                "cert_id": a_str(computed=True, description="Certificate id."),
                "cert_url": a_str(computed=True, description="Public certificate URL."),
                "expires_at": a_str(computed=True, description="Certificate expiry (UTC)."),
                "store_version": a_str(computed=True, description="Store version certified."),
                "standards_met": a_list(
                    a_str(), computed=True, description="Standards the certificate states."
                ),
                "status": a_str(
                    computed=True,
                    description="The judge's verdict at the last refresh (valid, expiring, "
                    "drifted, revoked, expired, no_certificate...); anything but valid or "
                    "expiring plans a replacement.",
                ),
            }
        )

    async def _validate_config(self, config: CredentialConfig) -> list[str]:
        check_config(config)
        return []

    # --- plan ------------------------------------------------------------------------------

    async def _create(
        self,
        ctx: ResourceContext[CredentialConfig, CredentialState, Any],
        base_plan: dict[str, Any],
    ) -> tuple[dict[str, Any] | None, Any]:
        await _checked_store(ctx)
        schema = self.get_schema().block.attributes
        for name in COMPUTED:
            base_plan[name] = a_unknown(schema[name])
        return base_plan, None

    async def _update(
        self,
        ctx: ResourceContext[CredentialConfig, CredentialState, Any],
        base_plan: dict[str, Any],
    ) -> tuple[dict[str, Any] | None, Any]:
        await _checked_store(ctx)
        prior = ctx.state
        if prior is not None and prior.status not in COVERED:
            # The refresh found the stored value no longer covered: replace it. Terraform
            # replaces only on a path whose planned value differs: status becomes unknown.
            schema = self.get_schema().block.attributes
            for name in COMPUTED:
                base_plan[name] = a_unknown(schema[name])
            ctx.require_replace("status")
        return base_plan, None

    # --- refresh: read only ----------------------------------------------------------------

    async def read(
        self, ctx: ResourceContext[CredentialConfig, CredentialState, Any]
    ) -> CredentialState | None:
        state = ctx.state
        if state is None or state.destination is None:
            return state
        import asyncio

        # Blocking I/O (the store, the authority) in a worker thread: Terraform refreshes up
        # to 10 resources at once, and their round trips overlap instead of queueing on
        # the provider's one event loop.
        refreshed, error = await asyncio.to_thread(refresh, state)
        if error is not None:
            ctx.add_error(*error)
        return refreshed

    # --- apply -----------------------------------------------------------------------------

    async def _create_apply(
        self, ctx: ResourceContext[CredentialConfig, CredentialState, Any]
    ) -> tuple[CredentialState | None, Any]:
        config = ctx.config
        if config is None or config.destination is None or config.preset is None:
            ctx.add_error("passgeni: invalid_request", "destination and preset are required")
            return None, None
        from passgeni_core import GenerationParameters
        from passgeni_core.workflows import ensure_rotated

        try:
            with quiet_stdout():
                check_config(config)
                uri = parse_destination(config.destination)
                rt = runtime()
                params = GenerationParameters.for_preset(
                    config.preset,
                    length=None if config.length is None else int(config.length),
                    exclude=config.exclude or "",
                )
                result = ensure_rotated(
                    rt.client(),
                    rt.store(uri, store_options(config.destination, config.store_options)),
                    uri,
                    config.preset,
                    keeper=config.keeper,
                    parameters=params,
                    label=config.label,
                )
        except Exception as exc:
            ctx.add_error(*describe(exc))
            return None, None
        planned = ctx.planned_state or CredentialState()
        return (
            evolve(
                planned,
                destination=config.destination,
                preset=config.preset,
                keeper=config.keeper,
                length=config.length,
                exclude=config.exclude,
                label=config.label,
                on_destroy=config.on_destroy,
                store_options=config.store_options,
                cert_id=result.cert_id,
                cert_url=result.cert_url,
                expires_at=_iso(result.expires_at),
                store_version=result.version,
                standards_met=list(result.standards_met),
                status="valid",
            ),
            None,
        )

    async def _update_apply(
        self, ctx: ResourceContext[CredentialConfig, CredentialState, Any]
    ) -> tuple[CredentialState | None, Any]:
        # Only on_destroy and store_options change in place; everything else replaces.
        prior = ctx.state or CredentialState()
        if ctx.config is None:
            return prior, None
        return (
            evolve(prior, on_destroy=ctx.config.on_destroy, store_options=ctx.config.store_options),
            None,
        )

    async def _delete_apply(
        self, ctx: ResourceContext[CredentialConfig, CredentialState, Any]
    ) -> None:
        state = ctx.state
        if state is None or state.cert_id is None or (state.on_destroy or "revoke") == "keep":
            return
        from passgeni_core import NotFound

        try:
            with quiet_stdout():
                client = runtime().client()
                try:
                    client.revoke(state.cert_id, REVOKE_REASON_DESTROYED)
                except NotFound:
                    return
        except Exception as exc:
            ctx.add_error(*describe(exc))
