"""ES256 signing: the :class:`Signer` protocol, a local key-file signer and a
Vault/OpenBao Transit signer, plus the lean compact-JWS builder.

The signing path is kept short because it is the authority's hot loop: the
private key is loaded once per kid, the protected header is serialised and
base64url-encoded once per kid, the payload is dumped compactly, and the
signature is made with ``cryptography`` directly (DER -> raw ``r || s``),
which does less per token than ``jwt.encode``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from passgeni_core import AuthorityError, AuthorityUnavailable
from passgeni_core.crypto import (
    b64url_decode as b64url_decode,  # re-exported for the service
    low_s,
)

__all__ = [
    "LocalFileSigner",
    "NewKey",
    "Signer",
    "TransitSigner",
    "b64url",
    "jwk_thumbprint",
    "public_jwk",
]

_ECDSA_SHA256 = ec.ECDSA(hashes.SHA256())
_KID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def b64url(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def public_jwk(key: ec.EllipticCurvePublicKey) -> dict[str, str]:
    """The RFC 7517 JWK of a P-256 public key, with ``kid`` = RFC 7638 thumbprint."""
    numbers = key.public_numbers()
    jwk = {
        "kty": "EC",
        "crv": "P-256",
        "x": b64url(numbers.x.to_bytes(32, "big")).decode("ascii"),
        "y": b64url(numbers.y.to_bytes(32, "big")).decode("ascii"),
    }
    return {**jwk, "kid": jwk_thumbprint(jwk), "alg": "ES256", "use": "sig"}


def jwk_thumbprint(jwk: dict[str, str]) -> str:
    """RFC 7638 thumbprint: SHA-256 of the required members, sorted, no whitespace."""
    required = {"crv": jwk["crv"], "kty": jwk["kty"], "x": jwk["x"], "y": jwk["y"]}
    canonical = json.dumps(required, separators=(",", ":"), sort_keys=True).encode("ascii")
    return b64url(hashlib.sha256(canonical).digest()).decode("ascii")


@dataclass(frozen=True)
class NewKey:
    """What a signer reports about a key it just created (all public)."""

    kid: str
    public_jwk: dict[str, str]
    #: How the signer finds the private key again (never the key itself).
    signer_ref: str


@runtime_checkable
class Signer(Protocol):
    """Creates ES256 keys and signs with them; private keys never leave it.

    ``sign`` returns the raw 64-byte JWS signature (``r || s``) over the
    signing input ``header_b64 + b"." + payload_b64``.
    """

    def create_key(self) -> NewKey:
        """Make a new P-256 key. Raises AuthorityError / AuthorityUnavailable."""
        ...

    def sign(self, signer_ref: str, signing_input: bytes) -> bytes:
        """Sign with the key ``signer_ref`` names. Raises AuthorityError / AuthorityUnavailable."""
        ...


class LocalFileSigner:
    """P-256 keys as PEM files (mode 0600) in ``directory``, named ``<kid>.pem``.

    Keys are loaded once and cached. Several processes can share the
    directory (same host or a shared volume); for real scale-out prefer
    :class:`TransitSigner`, which keeps the key out of every process.
    """

    def __init__(self, directory: Path | str) -> None:
        self.directory = Path(directory)
        self._keys: dict[str, ec.EllipticCurvePrivateKey] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"LocalFileSigner(directory={str(self.directory)!r})"

    def create_key(self) -> NewKey:
        """Generate a key and write it with 0600 before anything else sees it.

        Raises:
            AuthorityError: the key file cannot be written.
        """
        key = ec.generate_private_key(ec.SECP256R1())
        jwk = public_jwk(key.public_key())
        kid = jwk["kid"]
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        try:
            self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            path = self.directory / f"{kid}.pem"
            # O_EXCL + mode 0600 at creation: never a moment with wider permissions.
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                os.write(fd, pem)
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            raise AuthorityError(
                f"cannot write signing key to {self.directory}: {exc.strerror}"
            ) from None
        ref = f"file:{kid}.pem"
        with self._lock:
            self._keys[ref] = key
        return NewKey(kid=kid, public_jwk=jwk, signer_ref=ref)

    def _load(self, signer_ref: str) -> ec.EllipticCurvePrivateKey:
        key = self._keys.get(signer_ref)
        if key is not None:
            return key
        name = signer_ref.removeprefix("file:").removesuffix(".pem")
        if not _KID_RE.match(name):
            raise AuthorityError("signing key reference is malformed")
        path = self.directory / f"{name}.pem"
        try:
            loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
        except (OSError, ValueError):
            raise AuthorityError(
                f"signing key {name} is not readable in {self.directory}"
            ) from None
        if not isinstance(loaded, ec.EllipticCurvePrivateKey):
            raise AuthorityError(f"signing key {name} is not an EC key")
        with self._lock:
            self._keys[signer_ref] = loaded
        return loaded

    def sign(self, signer_ref: str, signing_input: bytes) -> bytes:
        """Raw ``r || s`` over ``signing_input``.

        Raises:
            AuthorityError: the key file is missing or unreadable.
        """
        der = self._load(signer_ref).sign(signing_input, _ECDSA_SHA256)
        r, s = decode_dss_signature(der)
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")


class TransitSigner:
    """Vault/OpenBao Transit (``ecdsa-p256``): the private key never leaves Vault.

    ``create_key`` creates the Transit key on first use and rotates it after
    that; every Transit version becomes its own ``kid``
    (``signer_ref`` = ``transit:<name>:<version>``). ``hvac`` is imported lazily.
    """

    def __init__(
        self,
        url: str,
        token: str,
        *,
        key_name: str = "passgeni-authority",
        mount_point: str = "transit",
        timeout: float = 10.0,
        verify: bool | str = True,
    ) -> None:
        self.url = url
        self._token = token
        self.key_name = key_name
        self.mount_point = mount_point
        self.timeout = timeout
        self.verify = verify
        self._client: Any = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        # The token is a credential: never shown.
        return (
            f"TransitSigner(url={self.url!r}, key_name={self.key_name!r}, "
            f"mount_point={self.mount_point!r}, token='***')"
        )

    def _hvac(self) -> Any:
        if self._client is None:
            with self._lock:
                if self._client is None:
                    try:
                        import hvac
                    except ImportError:
                        raise AuthorityError(
                            "the Transit signer needs hvac: pip install 'passgeni[vault]'"
                        ) from None
                    self._client = hvac.Client(
                        url=self.url, token=self._token, timeout=self.timeout, verify=self.verify
                    )
        return self._client

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        import requests

        try:
            return fn(*args, **kwargs)
        except requests.RequestException as exc:
            raise AuthorityUnavailable(
                f"Transit {what} failed: {type(exc).__name__} reaching {self.url}"
            ) from None
        except Exception as exc:
            # hvac's VaultError subclasses; their text is Vault's message, no secrets.
            raise AuthorityError(f"Transit {what} failed: {type(exc).__name__}: {exc}") from None

    def create_key(self) -> NewKey:
        """Create (or rotate) the Transit key and describe its newest version.

        Raises:
            AuthorityUnavailable: Vault cannot be reached.
            AuthorityError: Vault refused (permissions, wrong key type).
        """
        from hvac.exceptions import InvalidPath

        transit = self._hvac().secrets.transit

        def read_or_none() -> Any:
            try:
                return transit.read_key(name=self.key_name, mount_point=self.mount_point)
            except InvalidPath:
                return None

        existing = self._call("read_key", read_or_none)
        if existing is not None:
            if existing["data"]["type"] != "ecdsa-p256":
                raise AuthorityError(f"Transit key {self.key_name} is not ecdsa-p256")
            self._call(
                "rotate_key", transit.rotate_key, self.key_name, mount_point=self.mount_point
            )
        else:
            self._call(
                "create_key",
                transit.create_key,
                self.key_name,
                key_type="ecdsa-p256",
                mount_point=self.mount_point,
            )
        info = self._call(
            "read_key", transit.read_key, name=self.key_name, mount_point=self.mount_point
        )
        version = int(info["data"]["latest_version"])
        pem = info["data"]["keys"][str(version)]["public_key"]
        public = serialization.load_pem_public_key(pem.encode("ascii"))
        if not isinstance(public, ec.EllipticCurvePublicKey):
            raise AuthorityError(f"Transit key {self.key_name} is not an EC key")
        jwk = public_jwk(public)
        return NewKey(
            kid=jwk["kid"], public_jwk=jwk, signer_ref=f"transit:{self.key_name}:{version}"
        )

    def sign(self, signer_ref: str, signing_input: bytes) -> bytes:
        """Ask Transit for a JWS-marshalled signature (Vault hashes the input).

        Raises:
            AuthorityUnavailable: Vault cannot be reached.
            AuthorityError: Vault refused, or the reference is malformed.
        """
        try:
            _, name, version = signer_ref.split(":")
            key_version = int(version)
        except ValueError:
            raise AuthorityError("Transit signing key reference is malformed") from None
        result = self._call(
            "sign_data",
            self._hvac().secrets.transit.sign_data,
            name,
            hash_input=base64.b64encode(signing_input).decode("ascii"),
            key_version=key_version,
            hash_algorithm="sha2-256",
            marshaling_algorithm="jws",
            mount_point=self.mount_point,
        )
        signature = str(result["data"]["signature"])
        prefix = f"vault:v{key_version}:"
        if not signature.startswith(prefix):
            raise AuthorityError("Transit answered a signature for another key version")
        raw = b64url_decode(signature[len(prefix) :])
        if len(raw) != 64:
            raise AuthorityError("Transit signature is not a 64-byte JWS ES256 signature")
        return raw


class JWSBuilder:
    """Compact ES256 JWS tokens with the header cached per kid."""

    def __init__(self, signer: Signer) -> None:
        self.signer = signer
        self._headers: dict[str, bytes] = {}

    def header(self, kid: str) -> bytes:
        cached = self._headers.get(kid)
        if cached is None:
            raw = json.dumps({"alg": "ES256", "typ": "JWT", "kid": kid}, separators=(",", ":"))
            cached = b64url(raw.encode("ascii")) + b"."
            self._headers[kid] = cached
        return cached

    def token(self, kid: str, signer_ref: str, payload: dict[str, Any]) -> str:
        """The compact JWS for ``payload``. Raises whatever the signer raises."""
        body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        return self.token_for_body(kid, signer_ref, body)

    def typed_token(self, kid: str, signer_ref: str, payload: dict[str, Any], *, typ: str) -> str:
        """A compact JWS with another ``typ`` (e.g. ``statuslist+jwt``); not the hot path."""
        raw = json.dumps({"alg": "ES256", "typ": typ, "kid": kid}, separators=(",", ":"))
        body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        signing_input = b64url(raw.encode("ascii")) + b"." + b64url(body)
        signature = low_s(self.signer.sign(signer_ref, signing_input))
        return (signing_input + b"." + b64url(signature)).decode("ascii")

    def token_for_body(self, kid: str, signer_ref: str, body: bytes) -> str:
        """The compact JWS for an already-serialised payload (serialise once, store it too)."""
        signing_input = self.header(kid) + b64url(body)
        # Low-S whatever the signer returned (a Transit or HSM signer may not normalise).
        signature = low_s(self.signer.sign(signer_ref, signing_input))
        return (signing_input + b"." + b64url(signature)).decode("ascii")
