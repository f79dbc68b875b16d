"""What users feel: the CLI's wall time, side by side with its references (issue #19 item 6).

Measured in interleaved rounds (machine noise hits all alike), median of each, as wall
time and as the child process's CPU time (user + sys, from ``getrusage``: less sensitive to
other load on the machine than wall time):

* ``python -c pass``: bare interpreter start-up (the reference for the local commands);
* ``passgeni presets``, ``passgeni generate --preset soc2`` and
  ``passgeni verify @cert.jwt --jwks F`` (offline): goal, each within 0.15 s of bare Python;
* ``passgeni provision --preset soc2 --store vault://...`` against a served authority and real
  OpenBao (a new credential each run): goal, median <= 0.5 s;
* ``passgeni scan vault://secret/PREFIX`` over N certified credentials in OpenBao, against
  listing and reading the same N with plain hvac (the least any scan must do): goal <= 2x.
  The N credentials are provisioned once with ``passgeni rotate --inventory`` (batched).

The load average (``os.getloadavg``) before and after is in the report: on a shared
machine, compare only figures of one run. ``--scan-count 0`` skips the scan.

    python bench/bench_cli.py [--runs 11] [--scan-count 10000] [--scan-runs 3] [--json]
        [--baseline OTHER_PASSGENI] [--breakdown RUNS]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _root  # noqa: F401 - the repository root on sys.path, for tests.support
from cli_breakdown import breakdown

from tests.support import OpenBaoServer
from tests.support.authority import ServedAuthority, authority_process

PASSGENI = str(Path(sys.executable).parent / "passgeni")

HVAC_SCAN = """
import sys, hvac
client = hvac.Client(url=sys.argv[1], token=sys.argv[2])
kv = client.secrets.kv.v2
def walk(path):
    for key in kv.list_secrets(path=path, mount_point="secret")["data"]["keys"]:
        if key.endswith("/"):
            yield from walk(path + key)
        else:
            yield path + key
n = 0
for path in walk(sys.argv[3]):
    kv.read_secret_version(path=path, mount_point="secret", raise_on_deleted_version=True)
    kv.read_secret_metadata(path=path, mount_point="secret")
    n += 1
print(n)
"""


FLOOR = "python -c 'import requests, jwt, hvac, cryptography'"
PROVISION = "passgeni provision --store vault://"
BASELINE_PROVISION = "baseline provision --store vault://"
PROVISION_FLOOR = "import requests, jwt, hvac, cryptography.hazmat.primitives.asymmetric.ec"


def timed(argv: list[str], env: dict[str, str], *, ok: tuple[int, ...] = (0,)) -> float:
    return measured(argv, env, ok=ok)[0]


def measured(
    argv: list[str], env: dict[str, str], *, ok: tuple[int, ...] = (0,)
) -> tuple[float, float]:
    """(wall seconds, CPU seconds user + sys) of one run of ``argv``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, check=False)
    elapsed = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode not in ok:
        raise SystemExit(f"{' '.join(argv[:3])} failed: {done.stderr.decode().strip()[:300]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return elapsed, cpu


def _environment(bao: OpenBaoServer, auth: ServedAuthority, config: Path) -> dict[str, str]:
    # As installed by pip: byte-code caches exist (this machine's environment sets
    # PYTHONDONTWRITEBYTECODE, which would make every run recompile its imports).
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PASSGENI_", "VAULT_")) and k != "PYTHONDONTWRITEBYTECODE"
    }
    env.update(
        PASSGENI_CONFIG=str(config),
        PASSGENI_URL=auth.url,
        PASSGENI_API_KEY=auth.api_key,
        PASSGENI_ISSUER=auth.issuer,
        VAULT_ADDR=bao.url,
        VAULT_TOKEN=bao.token,
    )
    return env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=11)
    parser.add_argument("--scan-count", type=int, default=10_000)
    parser.add_argument("--scan-runs", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--breakdown",
        type=int,
        default=0,
        metavar="RUNS",
        help="also probe provision's imports and round trips RUNS times (cli_breakdown.py)",
    )
    parser.add_argument(
        "--baseline",
        metavar="PASSGENI",
        help="another passgeni executable (e.g. main's) measured in the same rounds",
    )
    args = parser.parse_args()
    with OpenBaoServer() as bao, authority_process() as auth, tempfile.TemporaryDirectory() as d:
        work = Path(d)
        config = work / "passgeni.toml"
        config.write_text("")
        env = _environment(bao, auth, config)
        # One certificate and the JWKS, for the offline verify.
        out = subprocess.run(
            [PASSGENI, "provision", "--preset", "soc2", "--json"],
            env=env, capture_output=True, check=True, text=True,
        )  # fmt: skip
        token = json.loads(out.stdout)["token"]
        (work / "cert.jwt").write_text(token)
        jwks = subprocess.run(
            [sys.executable, "-c", "import sys,requests;print(requests.get(sys.argv[1]).text)",
             f"{auth.url}/.well-known/jwks.json"],
            env=env, capture_output=True, check=True, text=True,
        ).stdout  # fmt: skip
        (work / "jwks.json").write_text(jwks)
        local = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "passgeni presets": [PASSGENI, "presets"],
            "passgeni generate": [PASSGENI, "generate", "--preset", "soc2"],
            "passgeni verify --jwks (offline)": [
                PASSGENI, "verify", f"@{work / 'cert.jwt'}", "--jwks", str(work / "jwks.json"),
            ],
        }  # fmt: skip
        if args.baseline:
            for name in ("presets", "generate", "verify --jwks (offline)"):
                argv = local[f"passgeni {name}"]
                local[f"baseline {name}"] = [args.baseline, *argv[1:]]
        # The floor under provision: the libraries it cannot do without (HTTP, JWS, Vault).
        floor = [sys.executable, "-c", PROVISION_FLOOR]
        for argv in [*local.values(), floor]:  # warm caches, byte-code
            timed(argv, env)
        names = [*local, FLOOR, PROVISION, *([BASELINE_PROVISION] if args.baseline else [])]
        wall: dict[str, list[float]] = {name: [] for name in names}
        cpu: dict[str, list[float]] = {name: [] for name in wall}

        def record(name: str, argv: list[str]) -> None:
            seconds, used = measured(argv, env)
            wall[name].append(seconds)
            cpu[name].append(used)

        load_before = os.getloadavg()
        for i in range(args.runs):
            for name, argv in local.items():
                record(name, argv)
            record(FLOOR, floor)
            uri = f"vault://secret/bench/p{i}"
            record(PROVISION, [PASSGENI, "provision", "--preset", "soc2", "--store", uri])
            if args.baseline:
                argv = [args.baseline, "provision", "--preset", "soc2", "--store", uri + "b"]
                record(BASELINE_PROVISION, argv)
        load_after = os.getloadavg()
        where = None
        if args.breakdown:
            where = breakdown(
                args.breakdown,
                lambda i: [
                    "provision",
                    "--preset",
                    "soc2",
                    "--store",
                    f"vault://secret/bench/w{i}",
                ],
                env,
                auth.url,
            )
        setup = 0.0
        if args.scan_count > 0:
            setup = _scan(args, work, env, bao, wall)
    medians = {k: statistics.median(v) for k, v in wall.items()}
    cpu_medians = {k: statistics.median(v) for k, v in cpu.items()}
    base = medians["python -c pass"]
    over = {k: medians[k] - base for k in local}
    cpu_over = {k: cpu_medians[k] - cpu_medians["python -c pass"] for k in local}
    targets = {
        "local commands within 0.15 s of bare Python": all(
            v <= 0.15 for k, v in over.items() if k.startswith("passgeni ")
        ),
        "provision median <= 0.5 s": medians[PROVISION] <= 0.5,
    }
    report: dict[str, object] = {
        "runs": args.runs,
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in load_after],
        "median_seconds": {k: round(v, 4) for k, v in medians.items()},
        "median_cpu_seconds": {k: round(v, 4) for k, v in cpu_medians.items()},
        "local_over_bare_python_seconds": {k: round(v, 4) for k, v in over.items()},
        "local_cpu_over_bare_python_seconds": {k: round(v, 4) for k, v in cpu_over.items()},
        "targets": targets,
    }
    if where is not None:
        report["provision_breakdown"] = where
    if args.scan_count > 0:
        scan_ratio = medians["passgeni scan"] / medians["plain hvac list + read"]
        targets["scan <= 2x plain hvac"] = scan_ratio <= 2.0
        report.update(
            scan_count=args.scan_count,
            scan_runs=args.scan_runs,
            scan_setup_seconds=round(setup, 1),
            scan_over_hvac_ratio=round(scan_ratio, 2),
        )
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(
        f"median of {args.runs} interleaved runs (scan: {args.scan_runs}); load average "
        f"{load_before[0]:.2f} before, {load_after[0]:.2f} after"
    )
    print(f"  {'':40s} {'wall':>9s}    {'':11s}  {'CPU':>9s}")
    for key, value in medians.items():
        extra = f"(+{(value - base) * 1000:6.1f} ms)" if key in local else ""
        used = f"{cpu_medians[key] * 1000:9.1f} ms" if key in cpu_medians else ""
        print(f"  {key:40s} {value * 1000:9.1f} ms {extra:13s} {used}")
    if where is not None:
        print(f"provision breakdown (median of {args.breakdown} probed runs), ms:")
        print(f"  {json.dumps(where, indent=2)}")
    if args.scan_count > 0:
        print(f"  scan of {args.scan_count} over plain hvac: {report['scan_over_hvac_ratio']}x")
    for target, met in targets.items():
        print(f"target: {target}: {'met' if met else 'NOT met'}")


def _scan(
    args: argparse.Namespace,
    work: Path,
    env: dict[str, str],
    bao: OpenBaoServer,
    wall: dict[str, list[float]],
) -> float:
    """The scan: N certified credentials, provisioned in bulk; returns the setup seconds."""
    import yaml

    inventory = work / "inventory.yaml"
    inventory.write_text(
        yaml.safe_dump(
            {
                "epoch": "bench",
                "defaults": {"preset": "soc2"},
                "credentials": [
                    {"name": f"c{i}", "destination": f"vault://secret/scan/c{i}"}
                    for i in range(args.scan_count)
                ],
            }
        )
    )
    began = time.perf_counter()
    timed([PASSGENI, "rotate", "--inventory", str(inventory), "--no-progress"], env)
    setup = time.perf_counter() - began
    scan = [PASSGENI, "scan", "vault://secret/scan", "--json"]
    hvac_scan = [sys.executable, "-c", HVAC_SCAN, bao.url, bao.token, "scan/"]
    wall["passgeni scan"] = []
    wall["plain hvac list + read"] = []
    for _ in range(args.scan_runs):
        wall["passgeni scan"].append(timed(scan, env))
        wall["plain hvac list + read"].append(timed(hvac_scan, env))
    return setup


if __name__ == "__main__":
    main()
