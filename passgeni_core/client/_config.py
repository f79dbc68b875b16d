"""Client configuration, resolved once at the edge (the CLI, a store adapter).

Precedence, highest first: explicit values (command-line flags), the
environment (``PASSGENI_URL``, ``PASSGENI_API_KEY``, ``PASSGENI_TIMEOUT``),
the config file (``$PASSGENI_CONFIG`` or ``~/.config/passgeni/config.toml``,
keys ``url``, ``api_key``, ``timeout``).

Fail closed: with no URL anywhere there is no authority, and :func:`connect`
raises :class:`AuthorityNotConfigured` (saying how to configure one) before
anything is certified or stored. A certificate from a throwaway authority
nobody else can reach is worse than none, so it is never the silent default.

Embedded mode, only when asked for: ``embedded=True`` (the CLI's
``--embedded``), or the URL ``embedded`` from any source (``--url embedded``,
``PASSGENI_URL=embedded``, ``url = "embedded"`` in the config file). The
authority then runs in-process. It is found through the ``passgeni.embedded``
entry point (name ``default``), which the ``passgeni[authority]`` extra
registers, so this pure package never imports the authority by name. The
entry point is a context manager exposing ``base_url`` and ``api_key`` (and
optionally ``issuer``); its certificates carry an ``embedded:`` issuer.

Only this module and the CLI read the environment and files; library code
receives a :class:`ClientConfig` or an :class:`AuthorityClient`.
"""

from __future__ import annotations

import contextlib
import math
import os
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from .._errors import AuthorityNotConfigured, AuthorityUnavailable, InvalidRequest, PassgeniError

if TYPE_CHECKING:
    # The HTTP client (requests, pyjwt, cryptography) loads in ``connect`` only:
    # reading the configuration, as the offline commands do, must not pay for it.
    from ._client import AuthorityClient

__all__ = [
    "DEFAULT_CONFIG_PATH",
    "EMBEDDED",
    "EMBEDDED_ENTRY_POINT_GROUP",
    "ClientConfig",
    "connect",
    "default_config_path",
    "resolve_config",
]

EMBEDDED_ENTRY_POINT_GROUP = "passgeni.embedded"
DEFAULT_CONFIG_PATH = Path("~/.config/passgeni/config.toml")
DEFAULT_TIMEOUT = 10.0
#: The URL value that asks for the embedded authority (flag, environment or config file).
EMBEDDED = "embedded"

Source = Literal["flag", "environment", "config file", "default"]


@dataclass(frozen=True, kw_only=True)
class ClientConfig:
    """Where the authority is and how to talk to it. ``repr`` hides the API key.

    ``url`` is the authority's base URL; ``embedded`` says an in-process
    authority was asked for (``url`` is then ``None``); neither means no
    authority is configured (:attr:`configured` is false, and :func:`connect`
    refuses). ``*_source`` say where each value came from (``url_source`` is
    ``None`` when nothing was configured), so ``passgeni`` can explain its
    configuration. ``url_option`` and ``embedded_option`` name the caller's
    own ways of configuring them, for the message when nothing is configured.
    """

    url: str | None = None
    api_key: str | None = None
    timeout: float = DEFAULT_TIMEOUT
    issuer: str | None = None
    embedded: bool = False
    url_source: Source | None = None
    api_key_source: Source | None = None
    timeout_source: Source = "default"
    config_path: Path | None = None
    url_option: str | None = field(default="--url URL", repr=False)
    embedded_option: str = field(default=f"--embedded (or PASSGENI_URL={EMBEDDED})", repr=False)

    @property
    def configured(self) -> bool:
        """An authority URL, or the embedded authority, was asked for."""
        return self.url is not None or self.embedded

    def require_authority(self) -> ClientConfig:
        """``self`` when an authority is configured.

        Raises:
            AuthorityNotConfigured: no URL and no embedded authority asked for.
        """
        if self.configured:
            return self
        where = str(self.config_path) if self.config_path else str(DEFAULT_CONFIG_PATH)
        ways = ["PASSGENI_URL", *([self.url_option] if self.url_option else [])]
        raise AuthorityNotConfigured(
            f"no authority configured: set {', '.join(ways)} or url in {where} to your "
            f"authority, or use {self.embedded_option} for a local throwaway authority "
            "whose certificates are no evidence for an auditor"
        )

    def __repr__(self) -> str:
        key = "'***'" if self.api_key else "None"
        where = EMBEDDED if self.embedded else repr(self.url)
        return (
            f"ClientConfig(url={where}, api_key={key}, timeout={self.timeout}, "
            f"url_source={self.url_source!r})"
        )

    __str__ = __repr__


def default_config_path(environ: Mapping[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    explicit = env.get("PASSGENI_CONFIG")
    return Path(explicit).expanduser() if explicit else DEFAULT_CONFIG_PATH.expanduser()


def _read_config_file(path: Path, *, explicit: bool) -> dict[str, Any]:
    try:
        text = path.read_bytes()
    except FileNotFoundError:
        if explicit:
            raise InvalidRequest(
                f"config file {str(path)!r} (PASSGENI_CONFIG) does not exist"
            ) from None
        return {}
    except OSError as exc:
        raise InvalidRequest(f"cannot read config file {str(path)!r}: {exc.strerror}") from None
    try:
        data = tomllib.loads(text.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        # The parser's message names a line and column, never the value.
        detail = (
            str(exc).splitlines()[0][:120]
            if isinstance(exc, tomllib.TOMLDecodeError)
            else "not UTF-8"
        )
        raise InvalidRequest(f"config file {str(path)!r} is not valid TOML: {detail}") from None
    unknown = sorted(k for k in data if k not in {"url", "api_key", "timeout", "issuer"})
    if unknown:
        raise InvalidRequest(
            f"config file {str(path)!r} has unknown key(s): {', '.join(unknown)} "
            "(known: url, api_key, timeout, issuer)"
        )
    for key in ("url", "api_key", "issuer"):
        if key in data and not isinstance(data[key], str):
            raise InvalidRequest(f"config file {str(path)!r}: {key} must be a string")
    if "timeout" in data and (
        isinstance(data["timeout"], bool) or not isinstance(data["timeout"], int | float)
    ):
        raise InvalidRequest(f"config file {str(path)!r}: timeout must be a number")
    return data


def _timeout(value: object, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise InvalidRequest(f"{where}: timeout must be a number of seconds")
    try:
        seconds = float(value)
    except ValueError:
        raise InvalidRequest(f"{where}: timeout must be a number of seconds") from None
    if not math.isfinite(seconds) or seconds <= 0:
        raise InvalidRequest(f"{where}: timeout must be a positive number of seconds")
    return seconds


def resolve_config(
    *,
    url: str | None = None,
    api_key: str | None = None,
    timeout: float | None = None,
    issuer: str | None = None,
    embedded: bool = False,
    environ: Mapping[str, str] | None = None,
    config_path: Path | None = None,
    url_option: str | None = "--url URL",
    embedded_option: str = f"--embedded (or PASSGENI_URL={EMBEDDED})",
) -> ClientConfig:
    """Resolve the configuration: arguments > environment > config file.

    ``embedded=True`` (or the URL :data:`EMBEDDED` from any source) asks for
    the embedded authority; with no URL anywhere the result is not
    :attr:`~ClientConfig.configured` (:func:`connect` then refuses: this
    never raises for it, so that offline commands can still read the rest).
    ``url_option``/``embedded_option`` name the caller's own options in that
    refusal (an Ansible module says ``url: embedded``, not ``--embedded``;
    ``url_option=None`` when the caller has no option but the environment).
    ``environ`` defaults to ``os.environ`` and ``config_path`` to
    :func:`default_config_path`; tests pass both.

    Raises:
        InvalidRequest: an unreadable or malformed config file (an explicit
            ``$PASSGENI_CONFIG`` that does not exist included), a bad timeout,
            or both a URL and ``embedded=True``.
    """
    if embedded and url not in (None, "", EMBEDDED):
        raise InvalidRequest("a URL and the embedded authority were both asked for: give one")
    env = os.environ if environ is None else environ
    # Only a file the user named in $PASSGENI_CONFIG must exist; the default may not.
    explicit_file = config_path is None and bool(env.get("PASSGENI_CONFIG"))
    path = config_path if config_path is not None else default_config_path(env)
    file = _read_config_file(path, explicit=explicit_file)

    def pick(flag: Any, env_name: str, file_key: str) -> tuple[Any, Source | None]:
        if flag not in (None, ""):
            return flag, "flag"
        if env.get(env_name):
            return env[env_name], "environment"
        if file.get(file_key) not in (None, ""):
            return file[file_key], "config file"
        return None, None

    url_value: Any
    url_source: Source | None
    if embedded:
        url_value, url_source = None, "flag"
    else:
        url_value, url_source = pick(url, "PASSGENI_URL", "url")
    if url_value == EMBEDDED:
        embedded, url_value = True, None
    key_value, key_source = pick(api_key, "PASSGENI_API_KEY", "api_key")
    timeout_value, timeout_source = pick(timeout, "PASSGENI_TIMEOUT", "timeout")
    issuer_value, _ = pick(issuer, "PASSGENI_ISSUER", "issuer")
    return ClientConfig(
        url=url_value,
        api_key=key_value,
        timeout=(
            DEFAULT_TIMEOUT
            if timeout_value is None
            else _timeout(timeout_value, f"{timeout_source} PASSGENI_TIMEOUT")
        ),
        issuer=issuer_value,
        embedded=embedded,
        url_source=url_source,
        api_key_source=key_source,
        timeout_source=timeout_source or "default",
        config_path=path,
        url_option=url_option,
        embedded_option=embedded_option,
    )


def _load_embedded() -> Any:
    import importlib.metadata  # slow (email, zipfile...): only when embedded mode is asked for

    eps = importlib.metadata.entry_points(group=EMBEDDED_ENTRY_POINT_GROUP)
    chosen = [ep for ep in eps if ep.name == "default"]
    if not chosen:
        raise AuthorityUnavailable(
            "the embedded authority was asked for but is not installed: install "
            "passgeni[authority], or set PASSGENI_URL (or --url, or url in the config file) "
            "to your authority"
        )
    try:
        return chosen[0].load()
    except Exception as exc:
        # A broken optional install must read as one actionable line, not a traceback.
        raise AuthorityUnavailable(
            f"the embedded authority ({chosen[0].value}) failed to load: "
            f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}; "
            "reinstall passgeni[authority] or set PASSGENI_URL"
        ) from None


@contextlib.contextmanager
def connect(config: ClientConfig, **client_options: Any) -> Iterator[AuthorityClient]:
    """An :class:`AuthorityClient` for ``config``; starts the embedded authority if asked.

    ``client_options`` go to :class:`AuthorityClient` (``retries``, ``session``...).

    Raises:
        AuthorityNotConfigured: no authority configured (checked before anything
            else happens: nothing is started, certified or stored).
        AuthorityUnavailable: embedded mode, but no embedded authority is installed
            (or it failed to start).
        InvalidRequest: a malformed URL.
    """
    config.require_authority()
    from ._client import AuthorityClient

    if config.url is not None:
        with AuthorityClient(
            config.url,
            config.api_key,
            timeout=config.timeout,
            issuer=config.issuer,
            **client_options,
        ) as client:
            yield client
        return
    factory = _load_embedded()
    with contextlib.ExitStack() as stack:
        try:
            authority = stack.enter_context(factory())
        except PassgeniError:
            raise
        except Exception as exc:
            raise AuthorityUnavailable(
                f"the embedded authority failed to start: {type(exc).__name__}: "
                f"{' '.join(str(exc).split())[:200]}"
            ) from None
        base_url = authority.base_url
        # The issuer is the authority's public URL, which may differ from where
        # this process reaches it; the embedded authority may expose it.
        issuer = (
            config.issuer
            or getattr(authority, "issuer", None)
            or getattr(authority, "public_url", None)
            or base_url
        )
        client = stack.enter_context(
            AuthorityClient(
                base_url,
                config.api_key or authority.api_key,
                timeout=config.timeout,
                issuer=issuer,
                **client_options,
            )
        )
        yield client
