"""Keeping credentials out of botocore's DEBUG log lines.

Both the ``aws-sm://`` store and the rotation handler send SecretStrings
(passwords, binding keys) through botocore, which logs request and response
bodies at DEBUG: each installs this filter before its first call.
"""

from __future__ import annotations

import logging

__all__ = ["BODY_LOGGERS", "REDACTOR", "RedactSecretBodies", "install_redaction"]


class RedactSecretBodies(logging.Filter):
    """botocore logs request and response bodies at DEBUG; ours carry passwords.

    Installed on the botocore loggers that print bodies, it rewrites any record
    mentioning a ``SecretString`` (or a binding key field) to a fixed note, so
    turning on DEBUG logging never writes a credential to a log.
    """

    MARKERS = ("SecretString", "passgeni-binding-key", "SecretBinary")

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            text = record.getMessage()
        except Exception:
            text = str(record.msg)
        if any(marker in text for marker in self.MARKERS):
            record.msg = "[passgeni: a botocore message carrying secret values was redacted]"
            record.args = ()
        return True


REDACTOR = RedactSecretBodies()
BODY_LOGGERS = (
    "botocore.endpoint",
    "botocore.parsers",
    "botocore.hooks",
    "botocore.auth",
    "botocore.httpchecksum",
    "botocore.retryhandler",
    "botocore.awsrequest",
)


def install_redaction() -> None:
    """Put the filter on every botocore logger that prints bodies (idempotent)."""
    for name in BODY_LOGGERS:
        logger = logging.getLogger(name)
        if REDACTOR not in logger.filters:
            logger.addFilter(REDACTOR)
