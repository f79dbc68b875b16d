"""`make demo`: the main job end to end, on this machine, with embedded defaults.

The demo chooses those defaults explicitly: nothing in PassGeni starts an
authority unless asked, and an embedded one marks what it signs (issuer
``embedded:<id>``, a banner on the certificate page, a note in every scan),
because its certificates are no evidence for an auditor.

1. Brings up the embedded authority (SQLite, a fresh ES256 key) and local
   OpenBao (real Vault API) and moto (real AWS Secrets Manager API) servers —
   and the Kubernetes emulator when the k8s backend is installed.
2. Provisions certified credentials into each store: generated locally from a
   seed and the authority's nonce, only parameters and the seed's commitment
   sent to the authority, the password + seed written as a new secret version,
   the certificate references beside it.
3. Verifies every certificate offline against a saved JWKS and proves each
   stored credential is exactly the certified, machine-generated one (the
   password re-derived from its seed: ``passgeni prove``).
4. Scans coverage across the stores, drifts one credential on purpose and
   scans again (``passgeni prove`` refuses it), revokes it offline, builds and
   verifies an evidence bundle and a per-certificate provenance record, then
   prints a summary with the certificate page URLs.
5. Stops everything and removes every temporary file.

Nothing here is a mock. The password never appears in the output.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the test fixtures' server runners are reused here

from passgeni_core import (  # noqa: E402
    EMBEDDED_ISSUER_NOTE,
    JWKS,
    AuthorityClient,
    available_schemes,
    is_embedded_issuer,
    open_store,
    prove_credential,
    provision_into_store,
    scan,
    verify_certificate,
)

BOLD, DIM, GREEN, RED, RESET = (
    ("\033[1m", "\033[2m", "\033[32m", "\033[31m", "\033[0m")
    if sys.stdout.isatty()
    else ("", "", "", "", "")
)


def step(text: str) -> None:
    print(f"\n{BOLD}== {text}{RESET}")


def table(headers: list[str], rows: list[list[Any]]) -> None:
    cells = [headers] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    for n, row in enumerate(cells):
        print("  " + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))
        if n == 0:
            print("  " + "  ".join("-" * w for w in widths))


@contextlib.contextmanager
def environment(**values: str) -> Iterator[None]:
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def main() -> int:
    from passgeni_authority.embedded import EmbeddedAuthority
    from tests.support import MotoServer, OpenBaoServer

    started = time.perf_counter()
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="passgeni-demo-")))
        step("Starting the embedded authority (asked for explicitly) and local stores")
        # Embedded defaults: a throwaway authority whose issuer says so (embedded:<id>).
        authority = stack.enter_context(EmbeddedAuthority(state_dir=tmp / "authority"))
        bao = stack.enter_context(OpenBaoServer())
        moto = stack.enter_context(MotoServer())
        print(f"  authority  {authority.base_url}  (SQLite + ES256 key in a temp state dir)")
        print(f"             issuer {authority.issuer}: {EMBEDDED_ISSUER_NOTE}")
        print(f"  OpenBao    {bao.url}  (real Vault API, KV v2 at secret/)")
        print(f"  moto       {moto.url}  (real AWS Secrets Manager API)")
        stack.enter_context(
            environment(
                VAULT_ADDR=bao.url,
                VAULT_TOKEN=bao.token,
                AWS_ENDPOINT_URL=moto.url,
                AWS_ACCESS_KEY_ID="demo",
                AWS_SECRET_ACCESS_KEY="demo",  # noqa: S106 - moto's dummy credentials
                AWS_REGION="us-east-1",
            )
        )
        destinations = [
            ("vault://secret/payments/db#password", "soc2"),
            ("vault://secret/payments/replica#password", "hipaa"),
            ("aws-sm://payments/api-key#password", "pci-dss"),
            ("aws-sm://payments/admin#password", "fips-140-3"),
        ]
        kube = None
        if "k8s" in available_schemes():
            from tests.support import KubeEmulator

            kube = stack.enter_context(KubeEmulator())
            print(f"  k8s        {kube.url}  (kmock Kubernetes API emulator)")
            destinations.append(("k8s://payments/db-credentials#password", "iso-27001"))
            # The commands below find the cluster the way kubectl does: a kubeconfig.
            kubeconfig = tmp / "kubeconfig"
            kubeconfig.write_text(
                "apiVersion: v1\nkind: Config\ncurrent-context: demo\n"
                f"clusters: [{{name: demo, cluster: {{server: '{kube.url}'}}}}]\n"
                "users: [{name: demo, user: {}}]\n"
                "contexts: [{name: demo, context: {cluster: demo, user: demo}}]\n"
            )
            stack.enter_context(environment(KUBECONFIG=str(kubeconfig)))
        client = stack.enter_context(
            AuthorityClient(authority.base_url, authority.api_key, issuer=authority.issuer)
        )

        def store_for(uri: str) -> Any:
            if uri.startswith("k8s://") and kube is not None:
                return stack.enter_context(contextlib.closing(open_store(uri, host=kube.url)))
            return stack.enter_context(contextlib.closing(open_store(uri)))

        step("Provisioning certified credentials (generated here; only parameters sent)")
        results = []
        for uri, preset in destinations:
            result = provision_into_store(client, store_for(uri), uri, preset, label=uri)
            results.append((uri, preset, result))
        table(
            ["destination", "preset", "store version", "cert id", "entropy"],
            [
                [uri, preset, r.version, r.cert_id, f"{r.public_dict().get('entropy_bits')} bits"]
                for uri, preset, r in results
            ],
        )

        step(
            "Proving each stored credential: signature against a saved JWKS, then the "
            "password re-derived from the seed stored beside it"
        )
        jwks_file = tmp / "jwks.json"
        jwks_file.write_text(json.dumps(client.jwks_document()))
        jwks = json.loads(jwks_file.read_text())
        rows = []
        proven = 0
        for uri, _preset, result in results:
            token = client.get_certificate(result.cert_id).token
            cert = verify_certificate(token, jwks, issuer=cert_issuer(token))
            proof = prove_credential(client, store_for(uri), result.uri, jwks=JWKS.from_dict(jwks))
            proven += proof.proven
            generator = cert.claims.generation.generator if cert.claims.generation else "-"
            rows.append(
                [
                    uri,
                    "signature OK",
                    f"{GREEN}proven{RESET} ({generator})"
                    if proof.proven
                    else f"{RED}{proof.reason}{RESET}",
                    ", ".join(cert.claims.standards_met),
                ]
            )
        table(["destination", "certificate", "stored value", "standards met"], rows)

        step("Coverage scan across the stores")
        prefixes = ["vault://secret/payments", "aws-sm://payments/"]
        if kube is not None:
            prefixes.append("k8s://payments")
        options: dict[str, dict[str, Any]] = {"k8s": {"host": kube.url}} if kube else {}
        report = scan(client, prefixes, require="pci-dss", store_options=options)
        print_report(report)

        step("Someone edits a password by hand in Vault; the scan notices the drift")
        import hvac

        vault = hvac.Client(url=bao.url, token=bao.token)
        current = vault.secrets.kv.v2.read_secret_version(
            path="payments/replica", mount_point="secret", raise_on_deleted_version=False
        )["data"]["data"]
        current["password"] = "hunter2-changed-by-hand"  # noqa: S105 - the point of the demo
        vault.secrets.kv.v2.create_or_update_secret(
            path="payments/replica", secret=current, mount_point="secret"
        )
        report = scan(client, prefixes, require="pci-dss", store_options=options)
        print_report(report)
        uri, _, replica = next(r for r in results if "payments/replica" in r[0])
        changed = prove_credential(client, store_for(uri), replica.uri, jwks=JWKS.from_dict(jwks))
        print(
            f"  $ passgeni prove {uri}\n  -> "
            + ("PROVEN" if changed.proven else f"{RED}NOT PROVEN{RESET}")
            + f" ({', '.join(changed.verdict.reasons)}): the seed no longer derives the value"
        )

        step("The public certificate page (no login), live while the authority runs")
        first = results[0][2]
        # The stored cert URL names the embedded issuer, which nobody can resolve: the
        # page is served where this process serves the authority.
        page_url = f"{authority.base_url}/cert/{first.cert_id}"
        with urllib.request.urlopen(page_url, timeout=10) as page:  # noqa: S310 - local URL
            html = page.read().decode()
        print(f"  stored cert URL {first.cert_url}")
        print(
            f"  {page_url}  -> HTTP 200, {len(html)} bytes, shows 'valid'? "
            f"{'valid' in html.lower()}; embedded banner? {EMBEDDED_ISSUER_NOTE in html}"
        )
        print(f"  JWKS: {authority.base_url}/.well-known/jwks.json")
        marked = EMBEDDED_ISSUER_NOTE in html and all(
            is_embedded_issuer(cert_issuer(client.get_certificate(r.cert_id).token))
            for _, _, r in results
        )

        auditor_ok = auditor_steps(
            authority, client, tmp, jwks_file, results[1][2].cert_id, results[0][2].cert_id
        )

        step("Summary")
        counts = report.counts()
        print(
            f"  {len(results)} credentials provisioned into {len(set(u.split(':')[0] for u, _, _ in results))} stores"
        )
        print(
            f"  {len(results)} certificates verified offline; {proven} credentials proven "
            "machine-generated (re-derived from their seeds)"
        )
        print(f"  coverage: {', '.join(f'{k}={v}' for k, v in counts.items() if v)}")
        print(f"  certificate page: {page_url}  (issuer {authority.issuer}: embedded, marked)")
        print(f"  nothing left behind: {tmp} is removed now; {time.perf_counter() - started:.1f} s")
    # The demo's own check: the drifted credential must have been caught, every stored
    # credential proven, the hand-changed one refused, and the embedded authority's
    # certificates and page must say what they are.
    refused = not changed.proven and changed.verdict.has("provenance_mismatch")
    proven_all = proven == len(results)
    return (
        0 if counts.get("drifted") == 1 and auditor_ok and marked and proven_all and refused else 1
    )


def auditor_steps(
    authority: Any, client: Any, tmp: Path, jwks_file: Path, drifted: str, kept_cert: str
) -> bool:
    """Offline revocation (signed status list), the auditor's evidence bundle and a
    provenance record, by CLI."""
    from passgeni_core.cli import main as passgeni

    issuer = getattr(authority, "issuer", authority.base_url)
    env = {"PASSGENI_URL": authority.base_url, "PASSGENI_API_KEY": authority.api_key}
    step("Offline revocation: revoke the drifted credential's certificate, cache the signed list")
    token_file = tmp / "drifted.jwt"
    token_file.write_text(client.get_certificate(drifted).token)
    status_file, bundle = tmp / "status-lists.jwt", tmp / "bundle.zip"
    with environment(**env, PASSGENI_ISSUER=issuer):
        passgeni(["revoke", drifted, "--reason", "changed by hand in Vault"])
        passgeni(["status-list", "fetch", "--out", str(status_file)])
    print(
        f"  $ passgeni verify @{token_file.name} --jwks jwks.json --status-list {status_file.name}"
    )
    with environment(PASSGENI_URL="http://127.0.0.1:9", PASSGENI_ISSUER=issuer):  # no network
        code = passgeni(
            [
                "verify",
                f"@{token_file}",
                "--jwks",
                str(jwks_file),
                "--status-list",
                str(status_file),
            ]
        )
    print(f"  -> exit {code} (1 = revoked, checked with no network)")
    revoked_offline = code == 1

    step("Evidence bundle for the auditor, verified offline")
    with environment(**env, PASSGENI_ISSUER=issuer):
        passgeni(
            ["evidence", "--out", str(bundle), "--org", "Example Corp",
             "--scope", "vault://secret/payments", "aws-sm://payments/",
             *(["k8s://payments"] if "KUBECONFIG" in os.environ else [])]
        )  # fmt: skip
    with environment(PASSGENI_URL="http://127.0.0.1:9"):
        code = passgeni(
            ["evidence", "verify", str(bundle), "--issuer", issuer, "--jwks", str(jwks_file)]
        )
    bundle_ok = code == 0

    step("A provenance record the auditor can file, made offline from the token and the JWKS")
    record = tmp / "provenance.md"
    kept = tmp / "kept.jwt"
    kept.write_text(client.get_certificate(kept_cert).token)
    with environment(PASSGENI_URL="http://127.0.0.1:9"):  # no network
        code = passgeni(
            ["provenance", f"@{kept}", "--jwks", str(jwks_file), "--issuer", issuer,
             "--format", "md", "--out", str(record)]
        )  # fmt: skip
    text = record.read_text() if record.exists() else ""
    headings = [line.lstrip("# ") for line in text.splitlines() if line.startswith("## ")]
    print(f"  $ passgeni provenance @{kept.name} --jwks jwks.json --format md -> exit {code}")
    print(f"  {len(text)} bytes; sections: {'; '.join(headings)}")
    record_ok = code == 0 and "passgeni-shake256-v1" in text
    logged = log_inclusion_step(client, tmp, kept)
    return (
        revoked_offline
        and bundle_ok
        and record_ok
        and logged
        and attestation_step({**env, "PASSGENI_ISSUER": issuer}, tmp, kept, jwks_file)
    )


def log_inclusion_step(client: Any, tmp: Path, token_file: Path) -> bool:
    """The transparency log: the kept certificate's inclusion proof, checked offline."""
    import base64
    import json

    from passgeni_core.cli import main as passgeni

    step("Transparency log: the certificate is a leaf; its inclusion proof checked offline")
    record = client.get_certificate(json.loads(base64.urlsafe_b64decode(
        token_file.read_text().split(".")[1] + "==="))["jti"])  # fmt: skip
    note = client.log_checkpoint()
    size = int(note.split("\n")[1])
    hashes = client.log_inclusion_proof(record.log_index, size)
    (tmp / "checkpoint.txt").write_text(note)
    (tmp / "log-key.txt").write_text(client.log_key().key)
    (tmp / "proof.json").write_text(json.dumps({"index": record.log_index, "size": size,
        "hashes": [base64.b64encode(h).decode() for h in hashes]}))  # fmt: skip
    print("  " + note.replace("\n", "\n  ").rstrip())
    print(f"  $ passgeni log verify @{token_file.name} --checkpoint checkpoint.txt "
          "--proof proof.json --log-key @log-key.txt")  # fmt: skip
    with environment(PASSGENI_URL="http://127.0.0.1:9"):  # no network
        code = passgeni(
            ["log", "verify", f"@{token_file}", "--checkpoint", str(tmp / "checkpoint.txt"),
             "--proof", str(tmp / "proof.json"), "--log-key", f"@{tmp / 'log-key.txt'}"]
        )  # fmt: skip
    print(f"  -> exit {code} (leaf {record.log_index} of {size}: {len(hashes)} hashes to the root)")
    return code == 0


def attestation_step(env: dict[str, str], tmp: Path, token_file: Path, jwks_file: Path) -> bool:
    """The certificate as an in-toto attestation (DSSE), exported and verified offline."""
    from passgeni_core.cli import main as passgeni
    from passgeni_core.crypto import JWKS, verify_attestation

    step("An in-toto attestation of the certificate (DSSE, signed by the authority)")
    out = tmp / "kept.intoto.json"
    with environment(**env):
        code = passgeni(["export", "in-toto", f"@{token_file}", "--out", str(out)])
    print(f"  $ passgeni export in-toto @{token_file.name} --out {out.name} -> exit {code}")
    if code != 0:
        return False
    verified = verify_attestation(out.read_text(), JWKS.from_dict(jwks_file.read_text()))
    subject = verified.statement["subject"][0]
    print(f"  subject {subject['name']}  digest {', '.join(subject['digest'])}")
    print(f"  predicate {verified.statement['predicateType']}")
    print(f"  verified offline: DER ES256 over the DSSE PAE, keyid {verified.keyid} (the JWKS kid)")
    return True


def cert_issuer(token: str) -> str:
    # The demo's authority is its own issuer; a real verifier pins it in config.
    import jwt

    issuer = jwt.decode(token, options={"verify_signature": False})["iss"]
    return str(issuer)


def print_report(report: Any) -> None:
    colour = {"valid": GREEN, "drifted": RED, "revoked": RED, "expired": RED}
    table(
        ["credential", "status", "standard", "detail"],
        [
            [
                e.uri,
                f"{colour.get(e.status, '')}{e.status}{RESET}",
                e.standard or "-",
                e.detail or "",
            ]
            for e in report.entries
        ],
    )
    print(f"  {DIM}all covered: {report.ok}{RESET}")


if __name__ == "__main__":
    raise SystemExit(main())
