"""The operations side of :class:`~passgeni_authority._service.AuthorityService`
(a mixin): metrics, readiness, the audit trail, plans and quotas, the periodic
job and the anomaly webhook. Wired by :meth:`Operations._wire_operations`
once the service's parts exist."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import msgspec

from passgeni_core.client import AuditPageBody, UsageBody

from ._eventsapi import EventLog, Maintenance
from ._metrics import Metrics, Readiness
from ._models import Principal
from ._plans import Plan
from ._webhook import AnomalyWebhook

if TYPE_CHECKING:
    from ._apikeys import Gate
    from ._audit import Audit
    from ._certificates import Certificates
    from ._keys import SigningKeys
    from ._plans import Plans
    from ._settings import AuthoritySettings
    from ._signing import Signer
    from ._storage import Storage

__all__ = ["Operations"]


class Operations:
    """Metrics, readiness, events, plans: the operator's side of the service."""

    if TYPE_CHECKING:
        settings: AuthoritySettings
        storage: Storage
        gate: Gate
        audit_log: Audit
        certs: Certificates
        keys: SigningKeys
        plans: Plans
        signer: Signer

        def jwks(self) -> dict[str, Any]: ...

    def _wire_operations(self) -> None:
        settings = self.settings
        self.metrics = Metrics()
        self.storage.observe_error = self.metrics.db_errors.inc
        if self.storage.committer is not None:
            self.storage.committer.observe_group = self.metrics.group_size.observe
        self.gate.refusals.observer = self.metrics.refusal_noted
        self.audit_log.on_anomaly.append(lambda _flag: self.metrics.anomalies.inc())
        self.certs.on_revoked.append(lambda standard: self.metrics.revoked.labels(standard).inc())
        self.readiness = Readiness(self.storage.ping, self._sign_probe)
        self.event_log = EventLog(settings, self.storage)
        self.maintenance = Maintenance(settings, self.storage, self.event_log, self.gate.refusals)
        self.webhook: AnomalyWebhook | None = None
        if settings.anomaly_webhook_url and settings.anomaly_webhook_secret:
            self.webhook = AnomalyWebhook(
                settings.anomaly_webhook_url,
                settings.anomaly_webhook_secret,
                issuer=settings.effective_issuer,
            )
            self.audit_log.on_anomaly.append(self.webhook.send)
        self.maintenance.start()

    def _close_operations(self) -> None:
        self.maintenance.close()
        if self.webhook is not None:
            self.webhook.close()

    # -- the audit trail (blocking) -----------------------------------------------------

    def events_page(self, principal: Principal, **filters: Any) -> dict[str, Any]:
        """Usage events in the caller's scope (see :meth:`EventLog.page`).

        Raises:
            InvalidRequest: a bad filter. AuthorityUnavailable: the database failed.
        """
        return self.event_log.page(principal, **filters)

    def anomalies(self, principal: Principal, *, limit: int = 100) -> list[dict[str, Any]]:
        """The latest anomaly flags in the caller's scope, newest first."""
        return self.event_log.anomalies(principal, limit=limit)

    # -- plans and quotas (blocking) ---------------------------------------------------

    def list_plans(self) -> list[Plan]:
        """Every plan, by name. Raises AuthorityUnavailable."""
        return self.plans.list()

    def define_plan(self, name: str, **limits: Any) -> Plan:
        """Create or edit a plan (``monthly_certificates``: a number or ``None``
        for unlimited; ``team_audit``; ``description``). Raises InvalidRequest."""
        return self.plans.define(name, **limits)

    def set_plan(
        self, subject: str, plan: str | None, *, kind: str | None = None
    ) -> dict[str, Any]:
        """Give a user or a team a plan (``None``: none). Raises InvalidRequest, NotFound."""
        return self.plans.assign(subject, plan, kind=kind)

    def usage(
        self,
        principal: Principal | None = None,
        *,
        subject: str | None = None,
        kind: str | None = None,
    ) -> dict[str, Any]:
        """This calendar month's certificates against the plan's quota, for the
        caller or for a user or team by name. Raises NotFound."""
        return self.plans.usage(principal, subject=subject, kind=kind)

    def run_maintenance(self) -> dict[str, int]:
        """Write the aggregated refusals now and apply the retention (``{"refusals", "pruned"}``)."""
        return self.maintenance.tick(everything=True)

    def ready(self) -> dict[str, Any]:
        """Readiness: the database answers and the signer signs with the active key
        (``{"status": "ready"|"not_ready", "checks": {...}}``; never raises)."""
        return self.readiness.check()

    def _sign_probe(self, message: bytes) -> tuple[bytes, dict[str, Any]]:
        """A signature of ``message`` by the active key, and that key's public JWK."""
        with self.storage.transaction() as conn:
            kid, signer_ref = self.keys.active(conn)
        jwk = next((k for k in self.jwks()["keys"] if k.get("kid") == kid), None)
        if jwk is None:
            raise LookupError("the active key is not in the JWKS")
        return self.signer.sign(signer_ref, message), jwk

    def audit(
        self,
        principal: Principal,
        *,
        standard: str | None = None,
        status: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        page: int = 1,
        page_size: int = 50,
    ) -> AuditPageBody:
        """The caller's certificates (the team's for team keys), newest first.

        Raises:
            InvalidRequest: an unknown standard or status, bad paging, naive dates.
            AuthorityUnavailable: the database failed.
        """
        listed = self.audit_log.page(
            principal,
            standard=standard,
            status=status,
            since=since,
            until=until,
            page=page,
            page_size=page_size,
        )
        use = self.plans.usage(principal)
        return msgspec.structs.replace(
            listed,
            usage=UsageBody(
                plan=use["plan"],
                month=use["month"],
                used=use["used"],
                limit=use["limit"],
                remaining=use["remaining"],
                resets_at=datetime.fromisoformat(use["resets_at"].replace("Z", "+00:00")),
            ),
        )
