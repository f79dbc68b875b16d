"""A no-change ``passgeni.compliance.credential`` loop against ``ansible.builtin.uri`` GETs.

Issue #18, item 12: a no-change run over 20 credentials should cost at most 1.5x
what 20 plain ``ansible.builtin.uri`` GETs of the same OpenBao KV paths (with the
token header) cost in the same run. Real ``ansible-playbook`` subprocesses against
``localhost`` (``connection: local``), the collection built and installed with
``ansible-galaxy`` as a user would, a real OpenBao dev server and an authority in
its own process. Each round runs every playbook once, in turn (machine noise hits
all alike); the figures are medians over the rounds:

* ``credential x20`` / ``uri x20``: the two loops the goal compares;
* ``credential x1`` / ``uri x1``: one item, the per-task fixed cost (the playbook
  start-up is in both: ``ansible-playbook`` with an empty play is timed too);
* ``credential x20, execute_on: host``: the module shipped per item (AnsiballZ),
  the path a remote host takes (``--module-path-rounds``, it is slow).

    python bench/bench_ansible.py [--rounds 5] [--items 20] [--module-path-rounds 1] [--json]
"""

from __future__ import annotations

import argparse
import json
import resource
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _root  # noqa: F401 - the repository root on sys.path, for tests.support

from tests.support import OpenBaoServer
from tests.support.ansible_env import base_env
from tests.support.authority import authority_process

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent

CREDENTIAL = """
- hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - passgeni.compliance.credential:
        preset: soc2
        destination: "vault://secret/{{ prefix }}/{{ item }}#password"
        execute_on: "{{ execute_on }}"
      loop: "{{ names }}"
      environment:
        VAULT_ADDR: "{{ vault_addr }}"
        VAULT_TOKEN: "{{ vault_token }}"
"""

URI = """
- hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - ansible.builtin.uri:
        url: "{{ vault_addr }}/v1/secret/data/{{ prefix }}/{{ item }}"
        headers:
          X-Vault-Token: "{{ vault_token }}"
      loop: "{{ names }}"
"""

EMPTY = """
- hosts: localhost
  connection: local
  gather_facts: false
  tasks: []
"""


#: CPU seconds (user + system) of the last runs' process trees: ansible-playbook, its
#: workers and modules; not the authority's or OpenBao's (they are not its children).
CPU: list[float] = []


def _env(work: Path, collections: Path) -> dict[str, str]:
    return base_env(work, collections)


def _install(work: Path, env: dict[str, str]) -> Path:
    dist, dest = work / "dist", work / "collections"
    galaxy = str(BIN / "ansible-galaxy")
    source = str(ROOT / "ansible_collection")
    subprocess.run(
        [galaxy, "collection", "build", source, "--output-path", str(dist)],
        env=env,
        check=True,
        capture_output=True,
    )
    (tarball,) = dist.glob("passgeni-compliance-*.tar.gz")
    subprocess.run(
        [galaxy, "collection", "install", str(tarball), "-p", str(dest)],
        env=env,
        check=True,
        capture_output=True,
    )
    return dest


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _play(env: dict[str, str], playbook: Path, extra: dict[str, object]) -> tuple[float, str]:
    """Wall time of one ``ansible-playbook`` run (its CPU time goes to ``CPU``)."""
    cpu = _cpu()
    began = time.perf_counter()
    done = subprocess.run(
        [str(BIN / "ansible-playbook"), "-i", "localhost,", str(playbook), "-e", json.dumps(extra)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - began
    CPU.append(_cpu() - cpu)
    if done.returncode != 0:
        raise SystemExit(f"{playbook.name} failed:\n{done.stdout[-3000:]}\n{done.stderr[-2000:]}")
    return elapsed, done.stdout


def _changed(stdout: str) -> int:
    """How many loop items reported ``changed`` (the recap counts the task once)."""
    return sum(line.startswith("changed: [localhost] => (item=") for line in stdout.splitlines())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--items", type=int, default=20)
    parser.add_argument("--module-path-rounds", type=int, default=1)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="passgeni-bench-ansible-") as tmp,
        OpenBaoServer() as bao,
        authority_process() as auth,
    ):
        work = Path(tmp)
        env = _env(work, work / "collections")
        _install(work, env)
        env.update(
            PASSGENI_URL=auth.url, PASSGENI_API_KEY=auth.api_key, PASSGENI_ISSUER=auth.issuer
        )
        books = {}
        for name, text in (("credential", CREDENTIAL), ("uri", URI), ("empty", EMPTY)):
            books[name] = work / f"{name}.yml"
            books[name].write_text(text)
        prefix = f"bench-{secrets.token_hex(4)}"
        names = [f"svc-{i:02d}" for i in range(args.items)]
        base = dict(prefix=prefix, vault_addr=bao.url, vault_token=bao.token)
        many = dict(base, names=names, execute_on="auto")
        one = dict(base, names=names[:1], execute_on="auto")
        _, out = _play(env, books["credential"], many)  # creates them: later runs change nothing
        assert _changed(out) == args.items, out
        cases = {
            "empty play": (books["empty"], base),
            f"credential x{args.items}": (books["credential"], many),
            f"uri x{args.items}": (books["uri"], many),
            "credential x1": (books["credential"], one),
            "uri x1": (books["uri"], one),
        }
        samples: dict[str, list[float]] = {k: [] for k in cases}
        hosted = f"credential x{args.items}, execute_on: host"
        samples[hosted] = []
        cpu: dict[str, list[float]] = {k: [] for k in samples}
        for i in range(args.rounds):
            for key, (book, extra) in cases.items():
                elapsed, out = _play(env, book, extra)
                assert book != books["credential"] or _changed(out) == 0, out
                samples[key].append(elapsed)
                cpu[key].append(CPU[-1])
            if i < args.module_path_rounds:
                elapsed, out = _play(env, books["credential"], dict(many, execute_on="host"))
                assert _changed(out) == 0, out
                samples[hosted].append(elapsed)
                cpu[hosted].append(CPU[-1])
    medians = {k: statistics.median(v) for k, v in samples.items() if v}
    cpu_medians = {k: statistics.median(v) for k, v in cpu.items() if v}
    n = args.items
    cred, uri = medians[f"credential x{n}"], medians[f"uri x{n}"]
    per_item = {
        "credential": (cred - medians["credential x1"]) / (n - 1),
        "uri": (uri - medians["uri x1"]) / (n - 1),
    }
    report = {
        "rounds": args.rounds,
        "items": n,
        "median_seconds": {k: round(v, 3) for k, v in medians.items()},
        "samples_seconds": {k: [round(x, 3) for x in v] for k, v in samples.items()},
        "median_cpu_seconds": {k: round(v, 3) for k, v in cpu_medians.items()},
        "ratio_credential_over_uri": round(cred / uri, 3),
        "round_ratios": [
            round(c / u, 3)
            for c, u in zip(samples[f"credential x{n}"], samples[f"uri x{n}"], strict=True)
        ],
        "cpu_ratio_credential_over_uri": round(
            cpu_medians[f"credential x{n}"] / cpu_medians[f"uri x{n}"], 3
        ),
        "per_item_seconds": {k: round(v, 4) for k, v in per_item.items()},
        "fixed_cost_over_empty_play_seconds": {
            "credential": round(medians["credential x1"] - medians["empty play"], 3),
            "uri": round(medians["uri x1"] - medians["empty play"], 3),
        },
        "goal_ratio": 1.5,
        "goal_met": cred / uri <= 1.5,
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(f"median wall time of one ansible-playbook run ({args.rounds} interleaved rounds)")
    for key, value in medians.items():
        print(f"  {key:40s} {value:7.2f} s wall  {cpu_medians[key]:7.2f} s CPU")
    print(
        f"ratio credential x{n} / uri x{n}: {report['ratio_credential_over_uri']:.2f} "
        f"(goal <= 1.5: {'met' if report['goal_met'] else 'NOT met'}); "
        f"CPU ratio {report['cpu_ratio_credential_over_uri']:.2f}"
    )
    print(
        f"per item: credential {per_item['credential'] * 1000:.0f} ms, "
        f"uri {per_item['uri'] * 1000:.0f} ms"
    )


if __name__ == "__main__":
    main()
