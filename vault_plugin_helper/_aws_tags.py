"""AWS tag rules: the one place they are written (the store backend and the
rotation handler both call :func:`validate_tag`).

AWS's rules for a resource tag (moto enforces none of them, so they are
enforced here before anything is written): a key of 1-128 characters that
does not start with ``aws:``; a value of at most 256 characters; both of
letters and digits (any script: AWS allows "letters, numbers and spaces
representable in UTF-8"), spaces and ``+ - = . _ : / @``. A tab, a newline
or any other whitespace but the space is refused.
"""

from __future__ import annotations

from passgeni_core import StoreLimitExceeded

__all__ = ["MAX_TAGS", "MAX_TAG_KEY", "MAX_TAG_VALUE", "tag_text_ok", "validate_tag"]

MAX_TAGS = 50
MAX_TAG_KEY = 128
MAX_TAG_VALUE = 256
_TAG_PUNCTUATION = frozenset(" +-=._:/@")


def _char_ok(ch: str) -> bool:
    return ch.isalpha() or ch.isdigit() or ch in _TAG_PUNCTUATION


def tag_text_ok(text: str) -> bool:
    """True when every character of ``text`` is one AWS allows in a tag."""
    return all(_char_ok(ch) for ch in text)


def validate_tag(key: str, value: str, *, where: str) -> None:
    """Raise StoreLimitExceeded unless AWS would accept the tag ``key=value``."""
    if not key or len(key) > MAX_TAG_KEY or not tag_text_ok(key):
        raise StoreLimitExceeded(f"{where}: tag key {key[:40]!r} is not a valid AWS tag key")
    if key.lower().startswith("aws:"):
        raise StoreLimitExceeded(f"{where}: tag keys starting with 'aws:' are reserved")
    if len(value) > MAX_TAG_VALUE:
        raise StoreLimitExceeded(
            f"{where}: tag {key!r} value is {len(value)} characters; AWS allows {MAX_TAG_VALUE}"
        )
    if not tag_text_ok(value):
        shown = "".join(sorted({ch for ch in value if not _char_ok(ch)}))[:10]
        raise StoreLimitExceeded(
            f"{where}: tag {key!r} value holds {shown!r}; AWS allows only letters, digits, spaces "
            "and + - = . _ : / @"
        )
