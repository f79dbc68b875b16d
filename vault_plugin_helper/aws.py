"""AWS Secrets Manager backend for ``aws-sm://NAME#KEY``.

Connection: the AWS SDK's default chain, nothing invented: credentials from
the environment, profiles (``AWS_PROFILE``), SSO, the instance or task role;
the region from ``AWS_REGION``/``AWS_DEFAULT_REGION`` or the profile; the
endpoint from ``AWS_ENDPOINT_URL`` (or ``AWS_ENDPOINT_URL_SECRETS_MANAGER``).
Options: ``client=`` an existing ``secretsmanager`` client, or
``session=``/``region_name=``/``endpoint_url=``/``profile_name=``.

The value (``SecretString``) is a JSON object: ``KEY`` (the password),
``KEY.passgeni-binding-key``, ``KEY.passgeni-cert-id``,
``KEY.passgeni-cert-url``; other fields are kept.

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
(moto does not enforce them): at most 50 tags, keys at most 128 characters
and not starting with ``aws:``, values at most 256 characters of letters,
digits, spaces and ``+ - = . _ : / @``; ``SecretString`` at most 65,536 bytes.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import uuid
from collections.abc import Iterator, Mapping
from typing import Any

from passgeni_core import (
    Credential,
    InvalidStoreURI,
    StoreConflict,
    StoreError,
    StoreLimitExceeded,
    StoreNotFound,
    StoreUnavailable,
)
from passgeni_core.stores import (
    CertificateRefs,
    StoredCredential,
    StoreURI,
    WritePlan,
    credential_fields,
    merge_credential_fields,
    stored_credentials,
)

from ._botocore_redaction import install_redaction
from ._common import scrub

__all__ = ["MAX_TAGS", "SecretsManagerLocations", "SecretsManagerStore", "validate_tag"]

MAX_TAGS = 50
MAX_TAG_KEY = 128
MAX_TAG_VALUE = 256
MAX_SECRET_STRING = 65_536
_TAG_PUNCTUATION = frozenset(" +-=._:/@")
_UNAVAILABLE_CODES = frozenset(
    {"InternalServiceError", "ServiceUnavailable", "ThrottlingException", "RequestTimeout"}
)


def _tag_text_ok(text: str) -> bool:
    return all(ch.isalpha() or ch.isdigit() or ch in _TAG_PUNCTUATION for ch in text)


def validate_tag(key: str, value: str, *, where: str) -> None:
    """Raise StoreLimitExceeded unless AWS would accept the tag."""
    if not key or len(key) > MAX_TAG_KEY or not _tag_text_ok(key):
        raise StoreLimitExceeded(f"{where}: tag key {key[:40]!r} is not a valid AWS tag key")
    if key.lower().startswith("aws:"):
        raise StoreLimitExceeded(f"{where}: tag keys starting with 'aws:' are reserved")
    if len(value) > MAX_TAG_VALUE:
        raise StoreLimitExceeded(
            f"{where}: tag {key!r} value is {len(value)} characters; AWS allows {MAX_TAG_VALUE}"
        )
    if not _tag_text_ok(value):
        bad = sorted(
            {ch for ch in value if not (ch.isalpha() or ch.isdigit() or ch in _TAG_PUNCTUATION)}
        )
        shown = "".join(bad)[:10]
        raise StoreLimitExceeded(
            f"{where}: tag {key!r} value holds {shown!r}; AWS allows only letters, digits, spaces "
            "and + - = . _ : / @"
        )


# botocore logs request bodies (SecretString) at DEBUG: filtered before the first call.
install_redaction()


_SECRET_NAME = re.compile(r"[A-Za-z0-9/_+=.@-]{1,512}")


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


def _check_size(name: str, body: str) -> None:
    if len(body.encode()) > MAX_SECRET_STRING:
        raise StoreLimitExceeded(
            f"aws-sm://{name}: the SecretString would exceed {MAX_SECRET_STRING} bytes"
        )


class SecretsManagerLocations:
    """``aws-sm://NAME``: a secret's name (not an ARN); the prefix form is ``aws-sm://[PREFIX]``.

    ``NAME`` is 1-512 letters, digits and ``/ _ + = . @ -``, as AWS allows.
    """

    form = "aws-sm://NAME#KEY"
    incomplete = "missing the secret NAME"

    def check(self, location: str) -> bool:
        if location and not _SECRET_NAME.fullmatch(location):
            raise ValueError(
                "an AWS secret name is 1-512 letters, digits and / _ + = . @ - (not an ARN)"
            )
        if "//" in location:
            raise ValueError("empty name segment ('//')")
        return bool(location)


class SecretsManagerStore:
    """The ``aws-sm://`` store. ``repr`` shows the region and endpoint, never credentials."""

    system = "aws-sm"
    locations = SecretsManagerLocations()

    def __init__(
        self,
        *,
        client: Any = None,
        session: Any = None,
        region_name: str | None = None,
        endpoint_url: str | None = None,
        profile_name: str | None = None,
        connect_timeout: float = 10.0,
        read_timeout: float = 30.0,
        max_attempts: int = 3,
    ) -> None:
        if client is None:
            import boto3
            import botocore.exceptions
            from botocore.config import Config

            try:
                sess = session or boto3.session.Session(profile_name=profile_name)
                # botocore reads AWS_DEFAULT_REGION but not AWS_REGION, which
                # Lambda and the other AWS SDKs set: honour both.
                region = region_name or sess.region_name or os.environ.get("AWS_REGION") or None
                client = sess.client(
                    "secretsmanager",
                    region_name=region,
                    endpoint_url=endpoint_url,
                    config=Config(
                        connect_timeout=connect_timeout,
                        read_timeout=read_timeout,
                        retries={"mode": "standard", "max_attempts": max_attempts},
                    ),
                )
            except botocore.exceptions.NoRegionError:
                raise StoreError(
                    "no AWS region: set AWS_REGION (or AWS_DEFAULT_REGION, or a profile's region)"
                ) from None
            except botocore.exceptions.ProfileNotFound as exc:
                raise StoreError(f"AWS profile not found: {scrub(exc, limit=120)}") from None
        self._client = client
        self.region = getattr(getattr(client, "meta", None), "region_name", None)
        self.endpoint = getattr(getattr(client, "meta", None), "endpoint_url", None)

    @classmethod
    def from_uri(cls, uri: StoreURI, **options: Any) -> SecretsManagerStore:
        if uri.scheme != "aws-sm":
            raise InvalidStoreURI(f"{uri} is not an aws-sm:// URI")
        return cls(**options)

    def __repr__(self) -> str:
        return f"SecretsManagerStore(region={self.region!r}, endpoint={self.endpoint!r})"

    def close(self) -> None:
        close = getattr(self._client, "close", None)
        if callable(close):
            close()

    # -- calls ----------------------------------------------------------------------------------

    def _call(self, operation: str, what: str, *, missing_ok: bool = False, **kwargs: Any) -> Any:
        import botocore.exceptions  # loaded already by the client; named for the except clauses

        try:
            return getattr(self._client, operation)(**kwargs)
        except botocore.exceptions.ClientError as exc:
            error = exc.response.get("Error", {})
            code = str(error.get("Code", "ClientError"))
            message = scrub(error.get("Message", ""), limit=200)
            if code == "ResourceNotFoundException" and missing_ok:
                return None
            if code == "ResourceExistsException":
                raise StoreConflict(
                    f"{what}: the secret was created by another writer meanwhile"
                ) from None
            if code in _UNAVAILABLE_CODES:
                raise StoreUnavailable(f"{what}: AWS Secrets Manager: {code} ({message})") from None
            if code in ("AccessDeniedException", "UnrecognizedClientException"):
                raise StoreError(f"{what}: permission denied ({code}: {message})") from None
            if code == "InvalidRequestException" and "deletion" in message.lower():
                raise StoreConflict(
                    f"{what}: the secret is scheduled for deletion; restore it first"
                ) from None
            raise StoreError(f"{what}: AWS Secrets Manager: {code} ({message})") from None
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
        records = stored_credentials(
            uri,
            data,
            version=current,
            metadata_refs=CertificateRefs.from_metadata(_tags(description)),
            only_key=only_key,
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
        if description is not None:
            if description.get("DeletedDate"):
                raise StoreConflict(f"aws-sm://{name}: the secret is scheduled for deletion")
            tags = _tags(description)
            ours = CertificateRefs(cert_id="x", cert_url="x", standard="x", version="x")
            new_keys = set(ours.to_metadata()) | {"passgeni-expires-at"}
            if len(set(tags) | new_keys) > MAX_TAGS:
                raise StoreLimitExceeded(
                    f"aws-sm://{name}: the secret has {len(tags)} tags; adding the certificate "
                    f"references would exceed AWS's limit of {MAX_TAGS}"
                )
            if current_version is not None and self._value(name, current_version) is None:
                raise StoreConflict(
                    f"aws-sm://{name}: the current SecretString is not a JSON object; "
                    "PassGeni stores KEY fields in a JSON object and will not overwrite it"
                )
        return WritePlan(
            uri=uri,
            current=current,
            next_version=str(uuid.uuid4()),
            precondition=current_version or "",
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
        fields = credential_fields(uri.key, credential, refs)
        if not plan.precondition:
            body = json.dumps(fields, separators=(",", ":"))
            _check_size(name, body)
            tags = [{"Key": k, "Value": v} for k, v in refs.to_metadata().items()]
            result = self._call(
                "create_secret",
                f"create {name}",
                Name=name,
                ClientRequestToken=token,
                SecretString=body,
                Tags=tags,
            )
            return str(result.get("VersionId", token))
        existing = self._value(name, plan.precondition)
        if existing is None:
            raise StoreConflict(
                f"aws-sm://{name}: the version read before is gone; nothing written"
            )
        merged = merge_credential_fields(existing, uri.key, credential, refs)
        body = json.dumps(merged, separators=(",", ":"))
        _check_size(name, body)
        self._call(
            "put_secret_value",
            f"write {name}",
            SecretId=name,
            ClientRequestToken=token,
            SecretString=body,
            VersionStages=["AWSPENDING"],
        )
        try:
            self._call(
                "update_secret_version_stage",
                f"make the new version of {name} current",
                SecretId=name,
                VersionStage="AWSCURRENT",
                MoveToVersionId=token,
                RemoveFromVersionId=plan.precondition,
            )
        except StoreError as exc:
            if type(exc) is StoreError and "AWSCURRENT" in exc.message:
                raise StoreConflict(
                    f"aws-sm://{name}: another writer made a new version current meanwhile; "
                    "the new value stays pending, the current one is unchanged"
                ) from None
            raise
        # Best effort: the pending label has served its purpose.
        with contextlib.suppress(StoreError):
            self._call(
                "update_secret_version_stage",
                f"clear AWSPENDING of {name}",
                SecretId=name,
                VersionStage="AWSPENDING",
                RemoveFromVersionId=token,
            )
        return token

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
        if prefix.location and prefix.explicit_key:
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
                if isinstance(name, str) and name.startswith(prefix.location):
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
