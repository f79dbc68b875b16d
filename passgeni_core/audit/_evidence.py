"""Evidence bundles: one zip an auditor checks with no account and no network.

Layout (``passgeni-evidence/1``)::

    manifest.json              what is in the bundle: SHA-256 and size of every file,
                               the certificates, the status lists, the issuer, the scope
    manifest.jwt               the authority's ES256 signature over SHA-256(manifest.json)
                               (typ passgeni-manifest+jwt)
    certificates/<id>.jwt      every certificate, as issued (ES256 JWT)
    keys/jwks-history.json     every signing key the authority ever used (JWK Set + dates)
    status/list-<n>.jwt        signed status-list snapshots (offline revocation)
    log/checkpoint.txt         the authority's transparency log: a signed checkpoint, its
    log/log-key.txt            key and every certificate's inclusion proof (log/proofs.json;
    log/proofs.json            see ``_evidence_log``), when the authority has a log
    registry/registry.csv      the credential -> certificate registry
    policy/policy.md           the written policy
    VERIFY.md                  how to check all of this, with the exact commands

:func:`verify_bundle` checks the manifest's signature, every file's digest,
that no file was added or removed, then each certificate (signature, issuer,
validity at issuance, expiry and revocation as of the bundle's creation) and
returns a verdict per certificate. Nothing is fetched.

Trust anchor: the keys inside a bundle prove only that the bundle is
internally consistent. Pin the authority with ``issuer`` and, ideally,
``trusted_jwks`` (the authority's published keys, obtained out of band):
every key the bundle relies on must then be one of those. Key ids are RFC 7638
thumbprints and are re-computed, so a key cannot hide under another's id.

Pure: bytes in, bytes or a report out; the CLI reads and writes files.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import zipfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from .._errors import MalformedToken
from ..crypto import (
    JWKS,
    unverified_payload,
)

__all__ = ["BUNDLE_FORMAT", "MANIFEST_TYP", "build_bundle"]

BUNDLE_FORMAT = "passgeni-evidence/1"
MANIFEST_TYP = "passgeni-manifest+jwt"
MANIFEST = "manifest.json"
MANIFEST_SIG = "manifest.jwt"
JWKS_FILE = "keys/jwks-history.json"
REGISTRY_FILE = "registry/registry.csv"
POLICY_FILE = "policy/policy.md"
VERIFY_FILE = "VERIFY.md"
_MAX_MEMBERS = 200_000
_MAX_MEMBER_BYTES = 64 * 1024 * 1024
_MAX_TOTAL_BYTES = 1024 * 1024 * 1024
_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _verify_md(issuer: str, certificates: int, lists: Sequence[str]) -> str:
    first_list = lists[0] if lists else "status/list-0.jwt"
    return f"""# Verifying this evidence bundle

This archive was produced by `passgeni evidence` from the certificate authority
`{issuer}`. Everything in it can be checked **offline**, with no account.

## 1. One command

```sh
pip install 'passgeni'          # any machine; no network needed after this
passgeni evidence verify bundle.zip --issuer {issuer}
```

It prints one verdict per certificate ({certificates} in this bundle) and exits 0 when the
bundle is authentic. To pin the authority's keys too, save its published key set
(`{issuer}/.well-known/jwks.json`, or `/api/signing-keys` for retired keys) out of band
and add `--jwks trusted-jwks.json`: every key the bundle relies on must then be in it.

## 2. What the command checks

1. `manifest.jwt` is an ES256 signature by the authority (a key from
   `{JWKS_FILE}`, whose `kid` is its RFC 7638 thumbprint) over the SHA-256 of
   `manifest.json`, issued by `{issuer}`.
2. Every file listed in `manifest.json` has the SHA-256 stated there, and the archive
   holds no other file.
3. Each `certificates/*.jwt` verifies (ES256, `kid` in the key history, issuer,
   `cert_version` 2.0, valid at issuance); it is then reported `valid`, `expired`
   (as of the bundle's creation) or `revoked`, the latter from the signed status list
   it points at (`status.status_list.uri` -> `status/list-N.jwt`, IETF Token Status List).
4. For each certificate it says who vouches for what: the entropy source is **declared by
   the client** (`entropy_source`: its RNG and FIPS mode, which no authority can observe);
   the re-validated parameters, the authority's own nonce source and its host's FIPS mode,
   the time and the issuer are **observed by the authority** (`provenance.observed`); and
   FIPS 140-3 is listed only under the written rule the certificate names
   (`provenance.fips_rule`, `strict-v1` or `lenient-v1`). A FIPS 140-3 claim beyond its
   own rule is reported as a note. `passgeni provenance @certificates/<id>.jwt --jwks
   {JWKS_FILE} --issuer {issuer}` writes the full record of one certificate.

## 3. By hand

```sh
unzip bundle.zip -d bundle && cd bundle
python3 - <<'PY'
import hashlib, json
m = json.load(open("manifest.json"))
for path, info in m["files"].items():
    ok = hashlib.sha256(open(path, "rb").read()).hexdigest() == info["sha256"]
    print("OK " if ok else "BAD", path)
PY
sha256sum manifest.json   # must equal manifest_sha256 inside manifest.jwt
passgeni verify @certificates/<id>.jwt --jwks {JWKS_FILE} --issuer {issuer} --at-issuance
passgeni verify @certificates/<id>.jwt --jwks {JWKS_FILE} --issuer {issuer} --status-list {first_list}
```

(The last command checks revocation against the snapshot; it refuses the snapshot once
it is past its `exp`, which `passgeni evidence verify` handles by checking it as of the
bundle's creation.)

## 4. The transparency log

When the authority keeps a transparency log, `log/checkpoint.txt` is its signed checkpoint
(key: `log/log-key.txt`; compare it with `{issuer}/.well-known/log-key` out of band, or pass
`--log-key` to `passgeni evidence verify`) and `log/proofs.json` holds every certificate's
inclusion proof in that tree: `passgeni evidence verify` checks each one. By hand, for one
certificate (its index and hashes from `log/proofs.json`):

```sh
passgeni log verify @certificates/<id>.jwt --checkpoint log/checkpoint.txt \
  --proof proof-of-<id>.json --log-key @log/log-key.txt
```
"""


def build_bundle(
    *,
    issuer: str,
    certificates: Iterable[str],
    jwks_history: Mapping[str, Any],
    status_lists: Mapping[str, str],
    registry_csv: str,
    policy_md: bytes | str,
    sign: Callable[[str], str],
    created_at: datetime | None = None,
    scopes: Sequence[str] = (),
    since: str | None = None,
    log: Mapping[str, Any] | None = None,
) -> bytes:
    """Assemble the zip (see the module docstring); ``sign`` gets SHA-256(manifest.json)
    in hex and returns the authority's ``manifest.jwt`` (e.g. ``client.sign_manifest``).
    ``log`` (``{"key", "checkpoint", "size", "proofs": {cert_id: {"index", "hashes"}}}``)
    adds the transparency log's checkpoint and inclusion proofs.

    Raises:
        MalformedToken: a certificate is not a JWS with a usable ``jti``.
        InvalidRequest: the JWKS history is not a JWK Set.
        Whatever ``sign`` raises.
    """
    when = (created_at or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
    JWKS.from_dict(dict(jwks_history))
    files: dict[str, bytes] = {}
    cert_paths: dict[str, str] = {}
    for token in certificates:
        token = token.strip()
        jti = unverified_payload(token).get("jti")
        if not isinstance(jti, str) or not _ID_RE.match(jti):
            raise MalformedToken("a certificate has no usable 'jti'")
        path = f"certificates/{jti}.jwt"
        files[path] = (token + "\n").encode("ascii")
        cert_paths[jti] = path
    list_paths: dict[str, str] = {}
    for n, (uri, token) in enumerate(sorted(status_lists.items())):
        path = f"status/list-{n}.jwt"
        files[path] = (token.strip() + "\n").encode("ascii")
        list_paths[uri] = path
    files[JWKS_FILE] = (json.dumps(dict(jwks_history), indent=2, sort_keys=True) + "\n").encode()
    files[REGISTRY_FILE] = registry_csv.encode("utf-8")
    files[POLICY_FILE] = policy_md.encode("utf-8") if isinstance(policy_md, str) else policy_md
    files[VERIFY_FILE] = _verify_md(issuer, len(cert_paths), sorted(list_paths.values())).encode()
    log_paths: dict[str, str] | None = None
    if log is not None:
        from ._evidence_log import LOG_CHECKPOINT, LOG_KEY, LOG_PROOFS, log_files

        files.update(log_files(log))
        log_paths = {"key": LOG_KEY, "checkpoint": LOG_CHECKPOINT, "proofs": LOG_PROOFS}
    manifest = {
        "format": BUNDLE_FORMAT,
        "issuer": issuer,
        "created_at": _iso(when),
        "since": since,
        "scopes": list(scopes),
        "certificates": dict(sorted(cert_paths.items())),
        "status_lists": list_paths,
        "log": log_paths,
        "files": {
            path: {"sha256": _sha256(data), "bytes": len(data)}
            for path, data in sorted(files.items())
        },
    }
    manifest_bytes = (json.dumps(manifest, indent=2) + "\n").encode("utf-8")
    signature = sign(_sha256(manifest_bytes)).strip()
    out = io.BytesIO()
    stamp = when.timetuple()[:6]
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for path, data in [
            (MANIFEST, manifest_bytes),
            (MANIFEST_SIG, (signature + "\n").encode("ascii")),
            *sorted(files.items()),
        ]:
            info = zipfile.ZipInfo(path, date_time=stamp)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, data)
    return out.getvalue()
