"""The one exception tree of the PassGeni suite.

Every class carries a stable, machine-readable ``code``. The HTTP API answers
``{"code", "message"}`` with it, Ansible modules return it as ``error_code``,
the Terraform script prints it on stderr and the CLI exits non-zero with it.
Codes never change once published; messages may improve.

Messages are one line and never contain secret material: callers pass only
names, counts and public values into them. ``repr`` shows the code and the
message, nothing else.
"""

from __future__ import annotations

__all__ = [
    "AlgorithmNotAllowed",
    "AuthorityError",
    "AuthorityNotConfigured",
    "AuthorityUnavailable",
    "BadSignature",
    "BindingMismatch",
    "BreachedPassword",
    "CertificateExpired",
    "CertificateNotYetValid",
    "CertificateRevoked",
    "ConflictingParameters",
    "ForbiddenHeader",
    "InvalidEntropySource",
    "InvalidParameters",
    "InvalidRequest",
    "InvalidStoreURI",
    "InvalidToken",
    "LengthOutOfRange",
    "LogInconsistent",
    "LogProofInvalid",
    "MalformedToken",
    "NotAttestable",
    "NotFound",
    "PassgeniError",
    "PermissionDenied",
    "PresetNotMet",
    "ProvenanceMismatch",
    "QuotaExceeded",
    "RateLimited",
    "SeedCommitmentRequired",
    "SessionAlreadyUsed",
    "SessionExpired",
    "SessionInvalid",
    "StoreConflict",
    "StoreError",
    "StoreLimitExceeded",
    "StoreUnavailable",
    "TargetError",
    "TargetLoginFailed",
    "TargetUnavailable",
    "Unauthenticated",
    "UnknownKey",
    "UnknownPreset",
    "UnknownStoreScheme",
    "UnsupportedCertVersion",
    "WrongIssuer",
    "error_for_code",
    "one_line",
]


class PassgeniError(Exception):
    """Root of every error raised by the PassGeni suite."""

    code: str = "passgeni_error"
    #: HTTP status the authority answers with for this error.
    http_status: int = 500

    def __init__(self, message: str) -> None:
        # One line, always: hosts (Terraform, Ansible) show the first line only.
        self.message = " ".join(str(message).split())
        super().__init__(self.message)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, message={self.message!r})"

    def to_dict(self) -> dict[str, str]:
        """The ``{code, message}`` object the HTTP API and JSON outputs use."""
        return {"code": self.code, "message": self.message}


# --- input validation --------------------------------------------------------


class InvalidParameters(PassgeniError):
    """Generation parameters are malformed (wrong type, unknown field, bad character)."""

    code = "invalid_parameters"
    http_status = 422


class LengthOutOfRange(InvalidParameters):
    """The requested length is below 1 or above the supported maximum."""

    code = "length_out_of_range"


class ConflictingParameters(InvalidParameters):
    """Parameters contradict each other (e.g. a minimum for a disabled class)."""

    code = "conflicting_parameters"


class PresetNotMet(InvalidParameters):
    """The parameters cannot meet the requested preset's requirements."""

    code = "preset_not_met"


class UnknownPreset(InvalidParameters):
    """No preset with that id exists in the mapping."""

    code = "unknown_preset"
    http_status = 404


class BreachedPassword(InvalidParameters):
    """A candidate password is on the shipped list of common/breached passwords."""

    code = "breached_password"


class InvalidEntropySource(InvalidParameters):
    """An ``entropy_source`` field is not one of the enumerated values (no free text):
    the message names the field and the values it may take."""

    code = "invalid_entropy_source"
    http_status = 400


class InvalidRequest(PassgeniError):
    """A request (HTTP body, CLI input, Terraform query) is malformed."""

    code = "invalid_request"
    http_status = 400


class SeedCommitmentRequired(InvalidRequest):
    """A generation session was asked for without a commitment to the client's seed:
    without it the authority could not tell a generated credential from a chosen one."""

    code = "seed_commitment_required"


class NotAttestable(InvalidRequest):
    """The certificate cannot be attested as asked (it commits to nothing, so an
    in-toto subject would have no digest)."""

    code = "not_attestable"
    http_status = 409


class AuthorityNotConfigured(InvalidRequest):
    """No authority is configured, and no embedded one was asked for (fail closed).

    Bad input, not an outage: the caller names an authority (``PASSGENI_URL``,
    ``--url``, the config file) or asks for a throwaway embedded one.
    """

    code = "authority_not_configured"


# --- certificate verification --------------------------------------------------


class InvalidToken(PassgeniError):
    """Base class: the certificate token failed verification."""

    code = "invalid_token"
    http_status = 400


class MalformedToken(InvalidToken):
    """The token is not a well-formed compact JWS with a JSON header and payload."""

    code = "malformed_token"


class AlgorithmNotAllowed(InvalidToken):
    """The token's ``alg`` is not ES256 (``none``, HS*, RS* ... are refused)."""

    code = "algorithm_not_allowed"


class ForbiddenHeader(InvalidToken):
    """The token carries a key-locating header (``jwk``, ``jku``, ``x5u``, ``x5c``...)."""

    code = "forbidden_header"


class UnknownKey(InvalidToken):
    """The token's ``kid`` is missing or not in the trusted JWKS."""

    code = "unknown_key"


class BadSignature(InvalidToken):
    """The signature does not verify against the key named by ``kid``."""

    code = "bad_signature"


class WrongIssuer(InvalidToken):
    """The token's ``iss`` is not the expected issuer."""

    code = "wrong_issuer"


class UnsupportedCertVersion(InvalidToken):
    """The token's ``cert_version`` is not one this library understands."""

    code = "unsupported_cert_version"


class CertificateExpired(InvalidToken):
    """The certificate's ``exp`` is in the past."""

    code = "certificate_expired"


class CertificateNotYetValid(InvalidToken):
    """The certificate's ``nbf`` (or ``iat``) is in the future."""

    code = "certificate_not_yet_valid"


class CertificateRevoked(InvalidToken):
    """The authority (or a signed status list) says the certificate is revoked."""

    code = "certificate_revoked"
    http_status = 410


class BindingMismatch(InvalidToken):
    """The stored credential does not match the certificate's commitment."""

    code = "binding_mismatch"


class ProvenanceMismatch(BindingMismatch):
    """The stored seed does not re-derive the stored password (or is not the committed
    seed): the value is not the machine-generated one the certificate is for."""

    code = "provenance_mismatch"


class LogProofInvalid(InvalidToken):
    """A transparency-log proof, checkpoint or signed note does not verify (or is malformed)."""

    code = "log_proof_invalid"


class LogInconsistent(LogProofInvalid):
    """Two checkpoints of one log are not consistent: its history was rewritten."""

    code = "log_inconsistent"


# --- authority ---------------------------------------------------------------


class AuthorityError(PassgeniError):
    """Base class: the certificate authority refused or failed a request."""

    code = "authority_error"
    http_status = 500


class AuthorityUnavailable(AuthorityError):
    """The authority could not be reached or answered 5xx after retries."""

    code = "authority_unavailable"
    http_status = 503


class Unauthenticated(AuthorityError):
    """Missing or invalid API key."""

    code = "unauthenticated"
    http_status = 401


class PermissionDenied(AuthorityError):
    """The caller may not act on this resource (another tenant's certificate)."""

    code = "permission_denied"
    http_status = 403


class NotFound(AuthorityError):
    """The certificate (or other resource) does not exist."""

    code = "not_found"
    http_status = 404


class RateLimited(AuthorityError):
    """Too many requests; ``retry_after`` says when to try again (seconds)."""

    code = "rate_limited"
    http_status = 429

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class QuotaExceeded(AuthorityError):
    """The caller's plan allows no more certificates this calendar month."""

    code = "quota_exceeded"
    http_status = 402


class SessionInvalid(AuthorityError):
    """The generation session token is malformed, forged or from another tenant."""

    code = "session_invalid"
    http_status = 400


class SessionExpired(SessionInvalid):
    """The generation session is older than its 60-second lifetime."""

    code = "session_expired"
    http_status = 410


class SessionAlreadyUsed(SessionInvalid):
    """The generation session was already redeemed (single use)."""

    code = "session_already_used"
    http_status = 409


# --- secret stores -------------------------------------------------------------


class StoreError(PassgeniError):
    """Base class: a secret store refused or failed an operation."""

    code = "store_error"
    http_status = 502


class InvalidStoreURI(StoreError):
    """The destination URI does not follow the documented grammar."""

    code = "invalid_store_uri"
    http_status = 400


class UnknownStoreScheme(InvalidStoreURI):
    """No installed backend handles the URI's scheme."""

    code = "unknown_store_scheme"


class StoreUnavailable(StoreError):
    """The store could not be reached (connection refused, timeout, 5xx)."""

    code = "store_unavailable"
    http_status = 503


class StoreConflict(StoreError):
    """A concurrent writer changed the secret (check-and-set failed)."""

    code = "store_conflict"
    http_status = 409


class StoreLimitExceeded(StoreError):
    """A store limit (metadata keys, value size, tag character set) would be exceeded."""

    code = "store_limit_exceeded"
    http_status = 422


class StoreNotFound(StoreError):
    """A listed prefix names nothing: no such mount or namespace, or nothing stored under it."""

    code = "store_not_found"
    http_status = 404


# --- credential targets (rotation) -----------------------------------------------


class TargetError(PassgeniError):
    """A credential target (a database...) refused or failed an operation."""

    code = "target_error"
    http_status = 502


class TargetUnavailable(TargetError):
    """The target could not be reached."""

    code = "target_unavailable"
    http_status = 503


class TargetLoginFailed(TargetError):
    """Logging in to the target with the credential failed."""

    code = "target_login_failed"


def one_line(exc: BaseException, *, with_code: bool = False) -> str:
    """A one-line description of any exception, for messages that wrap it.

    PassGeni errors give their message (already secret-free), prefixed by
    their code when ``with_code``; anything else gives its type and first 200
    characters, whitespace folded.
    """
    if isinstance(exc, PassgeniError):
        return f"{exc.code}: {exc.message}" if with_code else exc.message
    text = " ".join(str(exc).split())[:200]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _all_subclasses(cls: type[PassgeniError]) -> list[type[PassgeniError]]:
    out: list[type[PassgeniError]] = [cls]
    for sub in cls.__subclasses__():
        out.extend(_all_subclasses(sub))
    return out


def error_for_code(code: str) -> type[PassgeniError]:
    """The exception class for a published ``code`` (``PassgeniError`` if unknown).

    Used by clients to turn an authority's ``{code, message}`` back into the
    same exception the server raised.
    """
    for cls in _all_subclasses(PassgeniError):
        if cls.code == code:
            return cls
    return PassgeniError
