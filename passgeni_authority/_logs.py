"""``serve --log-format json``: one JSON object per log line, for log pipelines.

Every line is ``{"ts", "level", "logger", "message"}`` plus, for uvicorn's
access log, the request's ``client``, ``method``, ``path`` and ``status``,
and for an exception its ``exc_type`` and ``traceback``. The message is the
one the text format writes (the same arguments, formatted the same way):
the authority logs no secret in either format (API keys by their public
prefix only, never a password, seed, binding key or signing key), and the
JSON form adds nothing but these fields. A request's query string is
dropped from ``path`` (the API takes no secret there, but a client might
put one).
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

__all__ = ["LOG_FORMATS", "JsonFormatter", "announce", "log_config"]

#: ``--log-format`` choices.
LOG_FORMATS = ("text", "json")


class JsonFormatter(logging.Formatter):
    """A log record as one line of JSON."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
        }
        if (
            record.name == "uvicorn.access"
            and isinstance(record.args, tuple)
            and len(record.args) == 5
        ):
            client, method, path, _version, status = record.args
            entry.update(
                message=f"{method} {str(path).split('?', 1)[0]} {status}",
                client=str(client),
                method=str(method),
                path=str(path).split("?", 1)[0],
                status=int(str(status)) if str(status).isdigit() else str(status),
            )
        else:
            entry["message"] = record.getMessage()
        if record.exc_info and record.exc_info[0] is not None:
            entry["exc_type"] = record.exc_info[0].__name__
            entry["traceback"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def announce(banner: str, config: dict[str, Any] | None) -> None:
    """Configure logging from ``config`` (JSON) now, and say ``banner`` in the chosen
    form: structured from the first line, since the service logs while the app is
    built, before uvicorn configures logging (and a supervisor logs on its own)."""
    if config is None:
        print(banner, file=sys.stderr)
        return
    import logging.config

    logging.config.dictConfig(config)
    logging.getLogger("passgeni_authority").warning(banner)


def log_config(log_format: str, log_level: str) -> dict[str, Any] | None:
    """uvicorn's ``log_config`` for ``log_format``: ``None`` keeps uvicorn's own (text).

    JSON: uvicorn's loggers and the authority's (``passgeni_authority``) to
    stderr through :class:`JsonFormatter`, at ``log_level``.
    """
    if log_format not in LOG_FORMATS:
        raise ValueError(f"log format must be one of {', '.join(LOG_FORMATS)}")
    if log_format == "text":
        return None
    level = log_level.upper()
    handler = {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": f"{__name__}.JsonFormatter"}},
        "handlers": {"json": handler},
        "loggers": {
            "uvicorn": {"handlers": ["json"], "level": level, "propagate": False},
            "uvicorn.error": {"level": level},
            "uvicorn.access": {"handlers": ["json"], "level": level, "propagate": False},
            "passgeni_authority": {"handlers": ["json"], "level": level, "propagate": False},
        },
    }
