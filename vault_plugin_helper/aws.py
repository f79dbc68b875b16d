"""AWS Secrets Manager backend for ``aws-sm://NAME#KEY`` and ``aws-sm://ARN#KEY``.

Connection: the AWS SDK's default chain, nothing invented: credentials from
the environment, profiles (``AWS_PROFILE``), SSO, the instance or task role;
the region from ``AWS_REGION``/``AWS_DEFAULT_REGION`` or the profile; the
endpoint from ``AWS_ENDPOINT_URL`` (or ``AWS_ENDPOINT_URL_SECRETS_MANAGER``).
Options: ``client=`` an existing ``secretsmanager`` client, or
``session=``/``region_name=``/``endpoint_url=``/``profile_name=``;
``kms_key_id=`` (else ``PASSGENI_AWS_KMS_KEY_ID``, from ``environ=`` or the
process environment): the KMS key (id, ARN, alias or alias ARN) a *new*
secret is encrypted with, sent as ``KmsKeyId`` on ``create_secret`` only (an
existing secret keeps its key; without one AWS uses ``aws/secretsmanager``).
The string options are listed in :attr:`SecretsManagerStore.settings`, which
the CLI (``--store-option``), Ansible and Terraform pass through.

A secret may be addressed by its full ARN (``aws-sm://arn:aws:secretsmanager:
REGION:ACCOUNT:secret:NAME-xxxxxx``, see :mod:`._aws_arn`): calls go to the
ARN's region, and a secret of another account is reached through its resource
policy. A secret addressed by ARN must exist (AWS names new secrets by name).

The value (``SecretString``) is a JSON object: ``KEY`` (the password), other fields
kept; the seed or binding key and the references go to the proof record
``passgeni-proof/NAME`` (written first, see :mod:`._aws_proof`). With
``proof_location=inline`` (and for secrets addressed by ARN, or stored before proof
records) the value also holds ``KEY.passgeni-seed`` (or ``-binding-key``),
``KEY.passgeni-cert-id`` and ``KEY.passgeni-cert-url``.

Write order for an existing secret, a check-and-set in two calls:

1. ``put_secret_value`` with ``ClientRequestToken`` = the planned version id
   (the certificate's ``target.version``) and stage ``AWSPENDING`` only: the
   current credential is untouched;
2. ``update_secret_version_stage`` moving ``AWSCURRENT`` to it from the version
   read before (refused if another writer moved it in between).

A new secret is created with its value and tags in one ``create_secret``.
Tags (on the secret, not the version, hence the references in the value too)
``passgeni-cert-url``, ``passgeni-cert-id``, ``passgeni-standard``,
``passgeni-expires-at`` and ``passgeni-kv-version`` are merged with
``tag_resource``. AWS limits, enforced here before anything is written
(moto does not enforce them): at most 50 tags, each as
:func:`._aws_tags.validate_tag` says (the one tag rule, the rotation handler's
too); ``SecretString`` at most 65,536 bytes.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator, Mapping
from typing import Any

from passgeni_core import (
    Credential,
    InvalidRequest,
    InvalidStoreURI,
    StoreConflict,
    StoreError,
    StoreLimitExceeded,
    StoreNotFound,
    StoreUnavailable,
)
from passgeni_core.stores import (
    CertificateRefs,
    ProofEntry,
    StoredCredential,
    StoreURI,
    WritePlan,
    clean_value_fields,
    credential_fields,
    merge_credential_fields,
    merge_proof,
    needs_proof,
    proof_location_option,
    stored_credentials,
)

from ._aws_arn import SecretArn, SecretsManagerLocations, parse_secret_arn
from ._aws_clients import RegionalClients
from ._aws_proof import PROOF_PREFIX, proof_name, put_current, read_proof, write_proof_record
from ._aws_tags import MAX_TAGS, validate_tag
from ._botocore_redaction import install_redaction
from ._common import scrub

__all__ = [
    "KMS_KEY_ENV",
    "MAX_TAGS",
    "SecretArn",
    "SecretsManagerLocations",
    "SecretsManagerStore",
    "parse_secret_arn",
    "validate_tag",
]

MAX_SECRET_STRING = 65_536
MAX_KMS_KEY_ID = 2048
KMS_KEY_ENV = "PASSGENI_AWS_KMS_KEY_ID"
_UNAVAILABLE_CODES = frozenset(
    {"InternalServiceError", "ServiceUnavailable", "ThrottlingException", "RequestTimeout"}
)


# botocore logs request bodies (SecretString) at DEBUG: filtered before the first call.
install_redaction()


def _current_version(description: Mapping[str, Any]) -> str | None:
    """The version id labelled ``AWSCURRENT`` in a ``describe_secret`` answer."""
    for version_id, stages in (description.get("VersionIdsToStages") or {}).items():
        if "AWSCURRENT" in stages:
            return str(version_id)
    return None


def _tags(description: Mapping[str, Any]) -> dict[str, str]:
    """The secret's tags of a ``describe_secret`` answer, as a mapping."""
    return {
        str(t.get("Key")): str(t.get("Value", ""))
        for t in description.get("Tags") or []
        if isinstance(t, dict) and t.get("Key")
    }


def _error_code(exc: Any) -> str:
    return str(exc.response.get("Error", {}).get("Code", "ClientError"))


def _client_error(exc: Any, what: str) -> StoreError:
    """The store error for a botocore ``ClientError`` (one line, the code and AWS's message)."""
    code = _error_code(exc)
    message = scrub(exc.response.get("Error", {}).get("Message", ""), limit=200)
    if code == "ResourceExistsException":
        return StoreConflict(f"{what}: the secret was created by another writer meanwhile")
    if code in _UNAVAILABLE_CODES:
        return StoreUnavailable(f"{what}: AWS Secrets Manager: {code} ({message})")
    if code in ("AccessDeniedException", "UnrecognizedClientException"):
        return StoreError(f"{what}: permission denied ({code}: {message})")
    if code == "InvalidRequestException" and "deletion" in message.lower():
        return StoreConflict(f"{what}: the secret is scheduled for deletion; restore it first")
    return StoreError(f"{what}: AWS Secrets Manager: {code} ({message})")


def _check_tag_room(name: str, tags: Mapping[str, str]) -> None:
    ours = CertificateRefs(cert_id="x", cert_url="x", standard="x", version="x")
    new_keys = set(ours.to_metadata()) | {"passgeni-expires-at"}
    if len(set(tags) | new_keys) > MAX_TAGS:
        raise StoreLimitExceeded(
            f"aws-sm://{name}: the secret has {len(tags)} tags; adding the certificate "
            f"references would exceed AWS's limit of {MAX_TAGS}"
        )


def _kms_key_id(value: str | None) -> str | None:
    """A KMS key id, ARN, alias name or alias ARN, checked for shape only (AWS resolves it)."""
    if value is None:
        return None
    if len(value) > MAX_KMS_KEY_ID or not value.isascii() or any(c.isspace() for c in value):
        raise InvalidRequest(
            f"kms_key_id ({KMS_KEY_ENV}) must be a KMS key id, key ARN, alias or alias ARN "
            f"(ASCII, no spaces, at most {MAX_KMS_KEY_ID} characters)"
        )
    return value


def _check_size(name: str, body: str) -> None:
    if len(body.encode()) > MAX_SECRET_STRING:
        raise StoreLimitExceeded(
            f"aws-sm://{name}: the SecretString would exceed {MAX_SECRET_STRING} bytes"
        )


class SecretsManagerStore:
    """The ``aws-sm://`` store. ``repr`` shows the region and endpoint, never credentials."""

    system = "aws-sm"
    locations = SecretsManagerLocations()

    #: The string options an adapter may pass from its user's configuration
    #: (``--store-option NAME=VALUE``, Ansible/Terraform ``store_options``).
    settings = ("kms_key_id", "region_name", "endpoint_url", "profile_name", "proof_location")

    def __init__(
        self,
        *,
        client: Any = None,
        session: Any = None,
        region_name: str | None = None,
        endpoint_url: str | None = None,
        profile_name: str | None = None,
        kms_key_id: str | None = None,
        proof_location: str | None = None,
        environ: Mapping[str, str] | None = None,
        connect_timeout: float = 10.0,
        read_timeout: float = 30.0,
        max_attempts: int = 3,
    ) -> None:
        env = os.environ if environ is None else environ
        self.kms_key_id = _kms_key_id(kms_key_id or env.get(KMS_KEY_ENV) or None)
        #: ``sibling`` (default): proofs in ``passgeni-proof/NAME``; ``inline``: in the value.
        self.proof_location = proof_location_option(proof_location, where="aws-sm://")
        self._clients = RegionalClients(
            client=client,
            session=session,
            region_name=region_name,
            endpoint_url=endpoint_url,
            profile_name=profile_name,
            environ=env,
            timeouts=(connect_timeout, read_timeout, max_attempts),
        )
        self.region = self._clients.region
        self.endpoint = self._clients.endpoint

    @classmethod
    def from_uri(cls, uri: StoreURI, **options: Any) -> SecretsManagerStore:
        if uri.scheme != "aws-sm":
            raise InvalidStoreURI(f"{uri} is not an aws-sm:// URI")
        return cls(**options)

    def __repr__(self) -> str:
        return (
            f"SecretsManagerStore(region={self.region!r}, endpoint={self.endpoint!r}, "
            f"kms_key_id={self.kms_key_id!r})"
        )

    def close(self) -> None:
        self._clients.close()

    # -- calls ----------------------------------------------------------------------------------

    def _call(self, operation: str, what: str, *, missing_ok: bool = False, **kwargs: Any) -> Any:
        import botocore.exceptions  # loaded already by the client; named for the except clauses

        try:
            client = self._clients.for_secret(kwargs.get("SecretId"))
            return getattr(client, operation)(**kwargs)
        except botocore.exceptions.ClientError as exc:
            if _error_code(exc) == "ResourceNotFoundException" and missing_ok:
                return None
            raise _client_error(exc, what) from None
        except (
            botocore.exceptions.EndpointConnectionError,
            botocore.exceptions.ConnectTimeoutError,
            botocore.exceptions.ReadTimeoutError,
            botocore.exceptions.ConnectionClosedError,
            botocore.exceptions.HTTPClientError,
        ) as exc:
            raise StoreUnavailable(
                f"{what}: cannot reach AWS Secrets Manager at {self.endpoint} ({type(exc).__name__})"
            ) from None
        except botocore.exceptions.NoCredentialsError:
            raise StoreError(
                f"{what}: no AWS credentials found (environment, profile, SSO or instance role)"
            ) from None
        except botocore.exceptions.BotoCoreError as exc:
            raise StoreError(f"{what}: {type(exc).__name__}") from None

    def _describe(self, name: str) -> dict[str, Any] | None:
        result = self._call("describe_secret", f"describe {name}", missing_ok=True, SecretId=name)
        return result if isinstance(result, dict) else None

    def _value(self, name: str, version_id: str) -> dict[str, Any] | None:
        """The SecretString of a version as a JSON object; None if absent or not JSON."""
        result = self._call(
            "get_secret_value",
            f"read {name}",
            missing_ok=True,
            SecretId=name,
            VersionId=version_id,
        )
        if not isinstance(result, dict):
            return None
        text = result.get("SecretString")
        if not isinstance(text, str):
            return None
        try:
            value = json.loads(text)
        except ValueError:
            return None
        return value if isinstance(value, dict) else None

    def _records(
        self, uri: StoreURI, only_key: str | None
    ) -> tuple[dict[str, Any] | None, str | None, list[StoredCredential]]:
        name = uri.location
        description = self._describe(name)
        if description is None:
            return None, None, []
        current = _current_version(description)
        data = self._value(name, current) if current else None
        meta_refs = CertificateRefs.from_metadata(_tags(description))
        sibling = proof_name(name)
        proof = (
            read_proof(self._call, sibling)[1]
            if sibling and needs_proof(data, only_key or uri.key, meta_refs)
            else None
        )
        records = stored_credentials(
            uri,
            data,
            version=current,
            metadata_refs=meta_refs,
            only_key=only_key,
            proof=proof,
        )
        return description, current, records

    # -- SecretStore ------------------------------------------------------------------------------

    def read(self, uri: StoreURI) -> StoredCredential | None:
        _, _, records = self._records(uri, uri.key)
        record = records[0] if records else None
        return record if record is not None and record.password is not None else None

    def prepare(self, uri: StoreURI) -> WritePlan:
        name = uri.location
        description, current_version, records = self._records(uri, uri.key)
        current = records[0] if records and records[0].password is not None else None
        arn = parse_secret_arn(name)
        if description is None and arn is not None:
            raise StoreError(
                f"aws-sm://{name}: no such secret in account {arn.account}, region {arn.region} "
                "(or no permission to see it); a secret addressed by ARN must exist: create it "
                f"by name (aws-sm://{arn.name}) in its own account"
            )
        if description is not None:
            if description.get("DeletedDate"):
                raise StoreConflict(f"aws-sm://{name}: the secret is scheduled for deletion")
            _check_tag_room(name, _tags(description))
            if current_version is not None and self._value(name, current_version) is None:
                raise StoreConflict(
                    f"aws-sm://{name}: the current SecretString is not a JSON object; "
                    "PassGeni stores KEY fields in a JSON object and will not overwrite it"
                )
        sibling = proof_name(name) if self.proof_location == "sibling" else None
        if sibling is not None:
            if name.startswith(PROOF_PREFIX):
                raise InvalidStoreURI(f"{uri}: {PROOF_PREFIX}* holds PassGeni's proof records")
            # Reading it here is the permission check AWS allows before anything is
            # certified (Secrets Manager has no dry run of a write).
            read_proof(self._call, sibling)
        return WritePlan(
            uri=uri,
            current=current,
            next_version=str(uuid.uuid4()),
            precondition=current_version or "",
            proof=f"aws-sm://{sibling}" if sibling else None,
        )

    def check(self, plan: WritePlan, refs: CertificateRefs) -> None:
        where = f"aws-sm://{plan.uri.location}"
        for key, value in refs.to_metadata().items():
            validate_tag(key, value, where=where)

    def write(self, plan: WritePlan, credential: Credential, refs: CertificateRefs) -> str:
        uri = plan.uri
        name = uri.location
        token = plan.next_version
        if not token:
            raise StoreError(f"aws-sm://{name}: the plan has no version id")
        fields = (
            clean_value_fields(None, uri.key, credential)
            if plan.proof is not None
            else credential_fields(uri.key, credential, refs)
        )
        if not plan.precondition:
            body = json.dumps(fields, separators=(",", ":"))
            _check_size(name, body)
            tags = [{"Key": k, "Value": v} for k, v in refs.to_metadata().items()]
            kms: dict[str, Any] = {"KmsKeyId": self.kms_key_id} if self.kms_key_id else {}
            result = self._call(
                "create_secret",
                f"create {name}",
                Name=name,
                ClientRequestToken=token,
                SecretString=body,
                Tags=tags,
                **kms,
            )
            return str(result.get("VersionId", token))
        existing = self._value(name, plan.precondition)
        if existing is None:
            raise StoreConflict(
                f"aws-sm://{name}: the version read before is gone; nothing written"
            )
        merged = (
            clean_value_fields(existing, uri.key, credential)
            if plan.proof is not None
            else merge_credential_fields(existing, uri.key, credential, refs)
        )
        body = json.dumps(merged, separators=(",", ":"))
        _check_size(name, body)
        put_current(self._call, name, token, body, plan.precondition)
        return token

    def write_proof(self, plan: WritePlan, credential: Credential, refs: CertificateRefs) -> None:
        """The proof record's entry for ``plan.next_version``, before the value is written."""
        uri = plan.uri
        sibling = proof_name(uri.location)
        if sibling is None or not plan.next_version:
            raise StoreError(f"aws-sm://{uri.location}: no proof record for this secret")
        previous, existing = read_proof(self._call, sibling)
        entry = ProofEntry.of(credential, refs.cert_id, refs.cert_url, plan.next_version)
        keep = plan.current.refs.cert_id if plan.current and plan.current.refs else None
        record = merge_proof(existing, uri.key, entry, keep_cert=keep)
        _check_size(sibling, json.dumps(record, separators=(",", ":")))
        write_proof_record(
            self._call,
            secret=uri.location,
            token=plan.next_version,
            record=record,
            previous=previous,
            kms_key_id=self.kms_key_id,
        )

    def write_metadata(self, uri: StoreURI, refs: CertificateRefs) -> None:
        where = f"aws-sm://{uri.location}"
        ours = refs.to_metadata()
        for key, value in ours.items():
            validate_tag(key, value, where=where)
        self._call(
            "tag_resource",
            f"tag {uri.location}",
            SecretId=uri.location,
            Tags=[{"Key": k, "Value": v} for k, v in ours.items()],
        )

    def list(self, prefix: StoreURI) -> Iterator[StoredCredential]:
        only_key = prefix.key if prefix.explicit_key else None
        if prefix.location and (prefix.explicit_key or parse_secret_arn(prefix.location)):
            _, _, records = self._records(prefix, only_key)
            if not records:
                raise StoreNotFound(f"{prefix}: no such secret")
            yield from records
            return
        names: list[str] = []
        kwargs: dict[str, Any] = {"MaxResults": 100}
        if prefix.location:
            kwargs["Filters"] = [{"Key": "name", "Values": [prefix.location]}]
        while True:
            page = self._call("list_secrets", f"list {prefix}", **kwargs)
            for entry in page.get("SecretList") or []:
                name = entry.get("Name")
                if (
                    isinstance(name, str)
                    and name.startswith(prefix.location)
                    and not name.startswith(PROOF_PREFIX)
                ):
                    names.append(name)
            token = page.get("NextToken")
            if not token:
                break
            kwargs["NextToken"] = token
        if prefix.location and not names:
            raise StoreNotFound(
                f"aws-sm://{prefix.location}: no secret whose name starts with this prefix; "
                "is it mistyped?"
            )
        for name in sorted(set(names)):
            _, _, records = self._records(prefix.with_location(name, prefix.key), only_key)
            yield from records
