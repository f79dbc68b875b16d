"""PassGeni authority: a self-hostable certificate authority speaking the PassGeni API.

Layers, each usable alone:

* :class:`AuthorityService` - every rule, as plain Python (no HTTP);
* :func:`create_app` - the FastAPI app, a thin layer over the service
  (contract: ``docs/api-contract.md``);
* ``passgeni_authority.embedded.EmbeddedAuthority`` - the same app under
  uvicorn in a background thread on 127.0.0.1, for zero-setup local use;
* ``passgeni authority ...`` - the command line (``passgeni_authority.cli``).

Quick start::

    from passgeni_authority import AuthoritySettings, AuthorityService

    with AuthorityService(AuthoritySettings(state_dir=Path("/var/lib/passgeni"))) as svc:
        key = svc.create_api_key("alice")
"""

from ._app import create_app, parse_json_object
from ._service import (
    ApiKeyInfo,
    AuthorityService,
    CertificateRecord,
    CreatedApiKey,
    Principal,
    SigningKeyInfo,
    hash_api_key,
)
from ._settings import DEFAULT_PUBLIC_URL, AuthoritySettings, RateLimits, default_state_dir
from ._signing import LocalFileSigner, NewKey, Signer, TransitSigner, jwk_thumbprint, public_jwk

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_PUBLIC_URL",
    "ApiKeyInfo",
    "AuthorityService",
    "AuthoritySettings",
    "CertificateRecord",
    "CreatedApiKey",
    "LocalFileSigner",
    "NewKey",
    "Principal",
    "RateLimits",
    "Signer",
    "SigningKeyInfo",
    "TransitSigner",
    "__version__",
    "create_app",
    "default_state_dir",
    "hash_api_key",
    "jwk_thumbprint",
    "parse_json_object",
    "public_jwk",
]
