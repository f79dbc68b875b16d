"""``passgeni authority events|anomalies|usage|plans|plan|set-plan|prune-events``:
the operator's view of the audit trail, plans and quotas, read from the
authority's database directly (with the operator's scope: every tenant)."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from passgeni_core import InvalidRequest

from ._models import Principal

__all__ = [
    "OPS_SERVE_KEYS",
    "add_key_flags",
    "add_ops_commands",
    "add_serve_flags",
    "ops_settings",
]

#: The ``serve`` options of this module that worker processes need too.
OPS_SERVE_KEYS = ("log_format", "event_retention_days", "anomaly_webhook")

#: The operator, reading the local database: every tenant's events.
OPERATOR = Principal(user_id="operator", team_id=None, key_prefix="", operator=True)


def _instant(name: str, value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidRequest(f"--{name} must be an ISO 8601 date-time") from None
    if parsed.tzinfo is None:
        raise InvalidRequest(f"--{name} must carry a time zone (e.g. 2026-12-01T00:00:00Z)")
    return parsed.astimezone(UTC)


def _print_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")


def _event_line(event: dict[str, Any]) -> str:
    detail = " ".join(f"{k}={v}" for k, v in event["detail"].items())
    return f"{event['id']:>8} {event['at']} {event['type']:<20} {event['user'] or '-':<20} {event['ip'] or '-':<16} {detail}"


def _cmd_events(args: argparse.Namespace, service: Callable[[], Any]) -> int:
    filters = {
        "types": [t for value in args.type or () for t in value.split(",") if t],
        "user": args.user,
        "team": args.team,
        "key": args.key,
        "ip": args.ip,
        "since": _instant("since", args.since),
        "until": _instant("until", args.until),
        "limit": args.limit,
    }
    after = args.after
    with service() as svc:
        if args.json and not args.follow:
            _print_json(svc.events_page(OPERATOR, after=after, **filters))
            return 0
        while True:
            page = svc.events_page(OPERATOR, after=after, **filters)
            for event in page["items"]:
                print(
                    json.dumps(event, default=str)
                    if args.json or args.jsonl
                    else _event_line(event)
                )
            sys.stdout.flush()
            after = page["next_after"]
            if page["has_more"]:
                continue
            if not args.follow:
                return 0
            time.sleep(args.interval)


def _cmd_anomalies(args: argparse.Namespace, service: Callable[[], Any]) -> int:
    with service() as svc:
        flags = svc.anomalies(OPERATOR, limit=args.limit)
    if args.json:
        _print_json({"anomalies": flags})
        return 0
    if not flags:
        print("no anomaly flags", file=sys.stderr)
    for flag in flags:
        count = flag["detail"].get("count_24h")
        print(
            f"{flag['at']}  user {flag['user']}  {count} certificates in 24 h  ip {flag['ip'] or '-'}"
        )
    return 0


def _cmd_usage(args: argparse.Namespace, service: Callable[[], Any]) -> int:
    with service() as svc:
        use = svc.usage(subject=args.subject, kind=_kind(args))
    if args.json:
        _print_json(use)
        return 0
    limit = "unlimited" if use["limit"] is None else str(use["limit"])
    print(
        f"{use['subject']['kind']} {use['subject']['id']}: plan {use['plan'] or '(none)'}, "
        f"{use['used']} of {limit} certificates in {use['month']}; resets {use['resets_at']}"
    )
    return 0


def _cmd_plans(args: argparse.Namespace, service: Callable[[], Any]) -> int:
    with service() as svc:
        plans = [p.to_dict() for p in svc.list_plans()]
    if args.json:
        _print_json({"plans": plans})
        return 0
    from passgeni_core.cli import print_table

    print_table(
        ["PLAN", "CERTIFICATES / MONTH", "TEAM AUDIT", "DESCRIPTION"],
        [
            (
                p["name"],
                "unlimited" if p["monthly_certificates"] is None else p["monthly_certificates"],
                "yes" if p["team_audit"] else "no",
                p["description"] or "",
            )
            for p in plans
        ],
    )
    return 0


def _cmd_plan(args: argparse.Namespace, service: Callable[[], Any]) -> int:
    limits: dict[str, Any] = {}
    if args.monthly_certificates is not None:
        value = args.monthly_certificates
        if value == "unlimited":
            limits["monthly_certificates"] = None
        elif value.isdigit():
            limits["monthly_certificates"] = int(value)
        else:
            raise InvalidRequest("--monthly-certificates is a number or 'unlimited'")
    if args.team_audit is not None:
        limits["team_audit"] = args.team_audit == "yes"
    if args.description is not None:
        limits["description"] = args.description
    with service() as svc:
        plan = svc.define_plan(args.name, **limits)
    _print_json(plan.to_dict()) if args.json else print(f"plan {plan.name}: {plan.to_dict()}")
    return 0


def _kind(args: argparse.Namespace) -> str | None:
    return "team" if args.team else "user" if args.user else None


def _cmd_set_plan(args: argparse.Namespace, service: Callable[[], Any]) -> int:
    plan = None if args.plan == "none" else args.plan
    with service() as svc:
        changed = svc.set_plan(args.subject, plan, kind=_kind(args))
    if args.json:
        _print_json(changed)
    else:
        print(
            f"{changed['kind']} {changed['subject']}: plan {changed['plan'] or '(none)'} "
            f"(was {changed['previous'] or '(none)'})"
        )
    return 0


def _cmd_prune_events(args: argparse.Namespace, service: Callable[[], Any]) -> int:
    if args.older_than_days < 1:
        raise InvalidRequest("--older-than-days must be at least 1")
    with service() as svc:
        cutoff = svc.now() - timedelta(days=args.older_than_days)
        deleted = svc.event_log.prune(cutoff)
    print(f"deleted {deleted} usage events before {cutoff.isoformat()} (certificates are kept)")
    return 0


def ops_settings(event_retention_days: int | None, anomaly_webhook: str | None) -> dict[str, Any]:
    """The settings of ``--event-retention-days`` and ``--anomaly-webhook`` (flags, else
    ``PASSGENI_EVENT_RETENTION_DAYS`` / ``PASSGENI_ANOMALY_WEBHOOK``; the webhook's secret
    only from ``PASSGENI_ANOMALY_WEBHOOK_SECRET``). Raises InvalidRequest."""
    kwargs: dict[str, Any] = {}
    retention = event_retention_days
    if retention is None and _env("PASSGENI_EVENT_RETENTION_DAYS"):
        raw = str(_env("PASSGENI_EVENT_RETENTION_DAYS"))
        if not raw.isdigit():
            raise InvalidRequest("PASSGENI_EVENT_RETENTION_DAYS must be a number of days")
        retention = int(raw)
    if retention is not None:
        if retention < 1:
            raise InvalidRequest("the event retention must be at least 1 day")
        kwargs["event_retention_days"] = retention
    webhook = anomaly_webhook or _env("PASSGENI_ANOMALY_WEBHOOK")
    if webhook:
        secret = _env("PASSGENI_ANOMALY_WEBHOOK_SECRET")
        if not secret:
            raise InvalidRequest(
                "the anomaly webhook signs its requests with PASSGENI_ANOMALY_WEBHOOK_SECRET: set it"
            )
        if not webhook.startswith(("https://", "http://")):
            raise InvalidRequest("the anomaly webhook must be an http(s) URL")
        kwargs["anomaly_webhook_url"] = webhook
        kwargs["anomaly_webhook_secret"] = secret.encode()
    return kwargs


def _env(name: str) -> str | None:
    value = os.environ.get(name)
    return value if value else None


def add_key_flags(p: argparse.ArgumentParser) -> None:
    """``create-key --plan`` and ``--operator``."""
    p.add_argument("--plan", help="give the user (or, with --team, the team) this plan")
    p.add_argument(
        "--operator",
        action="store_true",
        help="an operator's key: reads every tenant's events; its dashboard sees every team",
    )


def add_serve_flags(p: argparse.ArgumentParser) -> None:
    """``serve --log-format``, ``--event-retention-days`` and ``--anomaly-webhook``."""
    p.add_argument(
        "--log-format",
        default="text",
        choices=["text", "json"],
        help="json: one JSON object per line (ts, level, logger, message; access-log fields)",
    )
    p.add_argument(
        "--event-retention-days",
        type=int,
        metavar="N",
        help="delete usage events older than N days (never certificates; "
        "env PASSGENI_EVENT_RETENTION_DAYS; default: keep them)",
    )
    p.add_argument(
        "--anomaly-webhook",
        metavar="URL",
        help="POST every anomaly flag here, signed with HMAC-SHA256 "
        "(secret from PASSGENI_ANOMALY_WEBHOOK_SECRET; env PASSGENI_ANOMALY_WEBHOOK)",
    )


def add_ops_commands(
    sub: Any,
    common: Callable[[argparse.ArgumentParser], None],
    service: Callable[[argparse.Namespace], Any],
) -> None:
    """Add the operator's commands; ``common`` adds the database flags, ``service``
    opens the service from the parsed flags."""

    def handler(fn: Callable[[argparse.Namespace, Callable[[], Any]], int]) -> Any:
        return lambda args: fn(args, lambda: service(args))

    p = sub.add_parser("events", help="the audit trail: usage events of every tenant")
    common(p)
    p.add_argument(
        "--type", action="append", metavar="TYPE", help="event type (repeatable, or a,b)"
    )
    p.add_argument("--user", help="events of this user")
    p.add_argument("--team", help="events of this team's members")
    p.add_argument("--key", metavar="PREFIX", help="events naming this API key prefix")
    p.add_argument("--ip", help="events from this client address")
    p.add_argument("--since", help="ISO 8601 date-time with a zone")
    p.add_argument("--until", help="ISO 8601 date-time with a zone")
    p.add_argument("--after", type=int, default=0, metavar="ID", help="events after this id")
    p.add_argument("--limit", type=int, default=500, help="events per page (1-1000)")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="one JSON page")
    out.add_argument("--jsonl", action="store_true", help="one JSON event per line")
    p.add_argument("--follow", action="store_true", help="keep printing new events")
    p.add_argument("--interval", type=float, default=1.0, help="--follow: seconds between polls")
    p.set_defaults(handler=handler(_cmd_events))

    p = sub.add_parser("anomalies", help="the latest anomaly flags of every tenant")
    common(p)
    p.add_argument("--limit", type=int, default=100)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(handler=handler(_cmd_anomalies))

    p = sub.add_parser("usage", help="a user's or team's certificates this month against its quota")
    common(p)
    p.add_argument("subject", help="a user or team id")
    who = p.add_mutually_exclusive_group()
    who.add_argument("--user", action="store_true", help="SUBJECT is a user")
    who.add_argument("--team", action="store_true", help="SUBJECT is a team")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(handler=handler(_cmd_usage))

    p = sub.add_parser("plans", help="list the plans")
    common(p)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(handler=handler(_cmd_plans))

    p = sub.add_parser("plan", help="create or edit a plan")
    common(p)
    p.add_argument("name")
    p.add_argument("--monthly-certificates", metavar="N|unlimited")
    p.add_argument("--team-audit", choices=["yes", "no"])
    p.add_argument("--description")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(handler=handler(_cmd_plan))

    p = sub.add_parser("set-plan", help="give a user or a team a plan ('none' removes it)")
    common(p)
    p.add_argument("subject", help="a user or team id")
    p.add_argument("plan", help="a plan name, or none")
    who = p.add_mutually_exclusive_group()
    who.add_argument("--user", action="store_true", help="SUBJECT is a user")
    who.add_argument("--team", action="store_true", help="SUBJECT is a team")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(handler=handler(_cmd_set_plan))

    p = sub.add_parser("prune-events", help="delete old usage events (never certificates)")
    common(p)
    p.add_argument("--older-than-days", type=int, required=True, metavar="N")
    p.set_defaults(handler=handler(_cmd_prune_events))
