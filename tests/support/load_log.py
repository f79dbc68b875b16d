"""The transparency log's checks after a load phase (``tests/support/load.py``).

After the load (and a ``kill -9``), from the database and over HTTP from every process:
the leaves are gapless (``0 .. size-1``, ``size`` the counter row), every certificate in
the database has exactly one issuance leaf hashing its token, and so every certificate a
client was answered; every process publishes the same key and a checkpoint that verifies
with it; the checkpoint extends the one taken before the phase (consistency proof); a
sample of answered certificates has inclusion proofs that verify.
"""

from __future__ import annotations

import random
from typing import Any

import requests
import sqlalchemy

from passgeni_core import PassgeniError
from passgeni_core.crypto import (
    Checkpoint,
    NoteVerifier,
    check_consistency,
    check_inclusion,
    decode_proof,
    issuance_leaf,
    leaf_hash,
    open_checkpoint,
)
from tests.support.authority_processes import Deployment

__all__ = ["check_log", "checkpoint_of"]


def checkpoint_of(http: requests.Session, url: str) -> Checkpoint:
    """One process's checkpoint, verified with the key it publishes."""
    key = NoteVerifier.from_key(http.get(f"{url}/.well-known/log-key", timeout=30).text)
    return open_checkpoint(http.get(f"{url}/log/checkpoint", timeout=30).text, key, origin=key.name)


def _leaves(dep: Deployment) -> tuple[int, list[tuple[int, bytes, str, str]], dict[str, str]]:
    engine = sqlalchemy.create_engine(dep.database_url)
    try:
        with engine.connect() as conn:
            size = conn.execute(sqlalchemy.text("SELECT size FROM transparency_log")).scalar_one()
            leaves = [
                (int(r[0]), bytes(r[1]), str(r[2]), str(r[3]))
                for r in conn.execute(
                    sqlalchemy.text(
                        "SELECT idx, leaf_hash, kind, cert_id FROM log_leaves ORDER BY idx"
                    )
                )
            ]
            tokens = {
                str(r[0]): str(r[1])
                for r in conn.execute(sqlalchemy.text("SELECT cert_id, token FROM certificates"))
            }
    finally:
        engine.dispose()
    return int(size), leaves, tokens


def check_log(
    dep: Deployment,
    http: requests.Session,
    answered: dict[str, str],
    before: Checkpoint | None,
    problems: list[str],
    *,
    sample: int = 100,
) -> dict[str, Any]:
    """Append to ``problems`` what is wrong with the log; the figures for the report."""
    size, leaves, tokens = _leaves(dep)
    if [idx for idx, *_ in leaves] != list(range(size)):
        problems.append(f"the log's leaves are not 0..{size - 1} without gaps ({len(leaves)} rows)")
    issued: dict[str, int] = {}
    for idx, stored, kind, cert_id in leaves:
        if kind != "issuance":
            continue
        if cert_id in issued:
            problems.append(f"{cert_id} has two issuance leaves ({issued[cert_id]}, {idx})")
        issued[cert_id] = idx
        token = tokens.get(cert_id)
        if token is None or stored != leaf_hash(issuance_leaf(token)):
            problems.append(f"leaf {idx} does not hash the stored token of {cert_id}")
    unlogged = [c for c in tokens if c not in issued]
    if unlogged:
        problems.append(f"{len(unlogged)} stored certificates have no log leaf: {unlogged[:5]}")
    not_answered_logged = [c for c in answered if c not in issued]
    if not_answered_logged:
        problems.append(f"{len(not_answered_logged)} answered certificates are not in the log")
    checkpoints = []
    keys = set()
    for process in dep.processes:
        try:
            cp = checkpoint_of(http, process.url)
        except PassgeniError as exc:
            problems.append(f"{process.url}: the checkpoint does not verify: {exc.message}")
            continue
        keys.add(http.get(f"{process.url}/.well-known/log-key", timeout=30).text)
        checkpoints.append(cp)
    if len(keys) > 1:
        problems.append(f"the processes publish {len(keys)} different log keys")
    proven = 0
    latest = max(checkpoints, key=lambda c: c.size, default=None)
    if latest is not None:
        if latest.size != size:
            problems.append(f"the checkpoint's size {latest.size} is not the log's {size}")
        url = random.choice(dep.processes).url
        if before is not None:
            body = http.get(
                f"{url}/log/proof/consistency",
                params={"from": before.size, "to": latest.size},
                timeout=30,
            ).json()
            try:
                check_consistency(before, latest, decode_proof(body))
            except PassgeniError as exc:
                problems.append(
                    f"the log does not extend the checkpoint before the phase: {exc.message}"
                )
        for cert_id in random.sample(sorted(answered), k=min(sample, len(answered))):
            index = issued.get(cert_id)
            if index is None:
                continue
            body = http.get(
                f"{url}/log/proof/inclusion/{index}", params={"size": latest.size}, timeout=30
            ).json()
            try:
                check_inclusion(issuance_leaf(answered[cert_id]), index, latest, decode_proof(body))
                proven += 1
            except PassgeniError as exc:
                problems.append(f"{cert_id}: inclusion proof: {exc.message}")
    return {
        "log_size": size,
        "log_leaves_of_answered": len(answered) - len(not_answered_logged),
        "log_inclusion_proven": proven,
        "log_consistent_with_before": before is not None and latest is not None,
    }
