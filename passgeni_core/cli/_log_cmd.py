"""``passgeni log verify`` and ``passgeni log monitor``: the authority's transparency log.

``verify`` checks that a certificate is a leaf of the log: the checkpoint's
signature against the log's key, then the inclusion proof against the
checkpoint's root, on this machine. It is fully offline with a token, a
checkpoint file, a proof file and a pinned key; what is not given is fetched
from the authority (a fetched proof is still checked here, so the authority can
only fail the check, never pass it falsely, given a pinned key and checkpoint).

``monitor`` keeps the last checkpoint it saw in a state file and checks that
the log's current checkpoint extends it (an RFC 9162 consistency proof): a log
that shrank, forked or rewrote a leaf fails loudly (``log_inconsistent``,
exit 1) and the state file is left as it was, the rejected checkpoint beside it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
from pathlib import Path
from typing import Any

from .._errors import InvalidRequest, LogInconsistent, LogProofInvalid
from .._untrusted import loads_untrusted
from ..client import AuthorityClient, connect
from ..crypto import (
    Checkpoint,
    NoteVerifier,
    check_consistency,
    check_inclusion,
    decode_proof,
    issuance_leaf,
    open_checkpoint,
    unverified_payload,
)
from ._options import (
    add_connection_options,
    authority_config,
    looks_like_token,
    read_file,
    read_token,
)
from ._output import print_json, print_kv

__all__ = ["register"]


def _key_from(value: str | None) -> NoteVerifier | None:
    """``--log-key``: a verifier key string or @FILE holding one."""
    if value is None:
        return None
    text = (
        read_file(value[1:], "log key file").decode("ascii", "replace")
        if value.startswith("@")
        else value
    )
    return NoteVerifier.from_key(text.strip())


def _read_json(path: str, what: str) -> Any:
    return loads_untrusted(read_file(path, what), what=what, max_bytes=1 << 20)


def _checkpoint_file(path: str) -> bytes:
    """A signed checkpoint, or the state file of ``log monitor`` (its last checkpoint)."""
    raw = read_file(path, "checkpoint file")
    if raw.lstrip().startswith(b"{"):
        state = loads_untrusted(raw, what="checkpoint file", max_bytes=1 << 20)
        if not isinstance(state, dict) or not isinstance(state.get("checkpoint"), str):
            raise InvalidRequest(f"{path!r} is neither a checkpoint nor a log monitor state file")
        return str(state["checkpoint"]).encode("utf-8")
    return raw


def cmd_log_verify(args: argparse.Namespace) -> int:
    """``passgeni log verify CERT|@cert.jwt [--checkpoint FILE] [--proof FILE] [--log-key KEY]``."""
    raw = read_token(args.certificate)
    if not raw:
        raise InvalidRequest("nothing to verify: give a certificate token, @FILE or an id")
    key = _key_from(args.log_key)
    note = _checkpoint_file(args.checkpoint) if args.checkpoint else None
    proof_doc = _read_json(args.proof, "proof file") if args.proof else None
    index = args.index
    if isinstance(proof_doc, dict) and index is None and isinstance(proof_doc.get("index"), int):
        index = proof_doc["index"]
    token = raw if looks_like_token(raw) else None
    offline = None not in (token, key, note, proof_doc, index)
    with contextlib.ExitStack() as stack:
        client = (
            None
            if offline
            else stack.enter_context(connect(authority_config(args).require_authority()))
        )
        if token is None or index is None:
            cert_id = raw if token is None else str(unverified_payload(token).get("jti", ""))
            record = _fetch(client).get_certificate(cert_id)
            if token is not None and record.token.strip() != token:
                raise LogProofInvalid(f"the authority's record of {cert_id} holds another token")
            token = record.token.strip()
            if record.log_index is None:
                raise LogProofInvalid(f"certificate {cert_id} is not in the authority's log")
            index = record.log_index if index is None else index
        if key is None:
            key = _fetch(client).log_key()
        checkpoint = open_checkpoint(
            note if note is not None else _fetch(client).log_checkpoint(), key, origin=key.name
        )
        if proof_doc is not None:
            hashes = decode_proof(proof_doc)
            if proof_doc.get("size", checkpoint.size) != checkpoint.size:
                raise LogProofInvalid("the proof file is for another tree size than the checkpoint")
        else:
            if index >= checkpoint.size:
                raise LogProofInvalid(
                    f"leaf {index} is not in the checkpoint's tree of {checkpoint.size} leaves "
                    "(the checkpoint is older than the certificate: get a newer one)"
                )
            hashes = _fetch(client).log_inclusion_proof(index, checkpoint.size)
    check_inclusion(issuance_leaf(token), index, checkpoint, hashes)
    cert_id = str(unverified_payload(token).get("jti", ""))
    result = {
        "included": True,
        "cert_id": cert_id,
        "index": index,
        "tree_size": checkpoint.size,
        "root": checkpoint.note.split("\n")[2],
        "origin": checkpoint.origin,
        "offline": offline,
    }
    if args.json:
        print_json(result)
        return 0
    print_kv(
        [
            ("status", f"INCLUDED: leaf {index} of {checkpoint.size}"),
            ("cert id", cert_id),
            ("log", f"{checkpoint.origin} (key {key.key})"),
            ("root", str(result["root"])),
            ("checked", "offline" if offline else "here, with proofs fetched from the authority"),
        ]
    )
    return 0


def _fetch(client: AuthorityClient | None) -> AuthorityClient:
    if client is None:  # offline has every piece: never reached
        raise InvalidRequest("this needs the authority")
    return client


def _load_state(path: Path) -> dict[str, Any] | None:
    if not path.exists():
        return None
    state = _read_json(str(path), "monitor state file")
    if not isinstance(state, dict) or not isinstance(state.get("checkpoint"), str):
        raise InvalidRequest(f"{str(path)!r} is not a passgeni log monitor state file")
    return state


def _write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def cmd_log_monitor(args: argparse.Namespace) -> int:
    """``passgeni log monitor --state FILE [--log-key KEY]``."""
    path = Path(args.state)
    state = _load_state(path)
    pinned = _key_from(args.log_key)
    if state is not None:
        stored = NoteVerifier.from_key(str(state.get("log_key", "")))
        if pinned is not None and pinned != stored:
            raise InvalidRequest("--log-key is not the key the state file was started with")
        pinned = stored
    with connect(authority_config(args).require_authority()) as client:
        published = client.log_key()
        if pinned is not None and published != pinned:
            raise LogInconsistent(
                f"the authority now publishes log key {published.key}, not {pinned.key}: "
                "a new key is a new log, and nothing proves it extends the one seen before"
            )
        key = pinned or published
        new = open_checkpoint(client.log_checkpoint(), key, origin=key.name)
        old: Checkpoint | None = None
        if state is not None:
            old = open_checkpoint(state["checkpoint"], key, origin=key.name)
            proof = [] if old.size == 0 else client.log_consistency_proof(old.size, new.size)
            try:
                check_consistency(old, new, proof)
            except LogInconsistent:
                # Keep the evidence: the state is untouched, the rejected checkpoint beside it.
                _write_atomically(path.with_name(path.name + ".rejected"), new.note)
                raise
    _write_atomically(
        path,
        json.dumps(
            {"origin": new.origin, "log_key": key.key, "size": new.size, "checkpoint": new.note},
            indent=2,
        )
        + "\n",
    )
    result = {
        "consistent": True,
        "origin": new.origin,
        "previous_size": None if old is None else old.size,
        "size": new.size,
        "new_leaves": None if old is None else new.size - old.size,
    }
    if args.json:
        print_json(result)
        return 0
    seen = (
        "first checkpoint: key and checkpoint pinned"
        if old is None
        else f"consistent with the checkpoint of {old.size} seen before (+{new.size - old.size} leaves)"
    )
    print_kv([("status", "OK"), ("log", new.origin), ("size", str(new.size)), ("history", seen)])
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "log",
        help="check the authority's transparency log (inclusion of a certificate, consistency)",
    )
    log_sub = p.add_subparsers(dest="log_command", required=True, metavar="COMMAND")
    v = log_sub.add_parser(
        "verify",
        help="check that a certificate is a leaf of the log (offline with a checkpoint, a proof and a key)",
    )
    v.add_argument(
        "certificate",
        metavar="CERT|@cert.jwt",
        help="a certificate token ('-' for stdin, @FILE) or its id (asks the authority)",
    )
    v.add_argument(
        "--checkpoint",
        metavar="FILE",
        help="a signed checkpoint, or a `log monitor` state file, to check against "
        "(default: the authority's latest)",
    )
    v.add_argument(
        "--proof",
        metavar="FILE",
        help='the inclusion proof, {"index": N, "size": S, "hashes": [...]} (default: fetched)',
    )
    v.add_argument("--index", type=int, metavar="N", help="the certificate's leaf index")
    v.add_argument(
        "--log-key",
        metavar="KEY|@FILE",
        help="the log's pinned note verifier key (default: the authority's /.well-known/log-key)",
    )
    v.add_argument("--json", action="store_true", help="machine-readable output")
    add_connection_options(v)
    v.set_defaults(handler=cmd_log_verify)
    m = log_sub.add_parser(
        "monitor",
        help="check that the log extends the last checkpoint seen (exit 1 if history was rewritten)",
    )
    m.add_argument(
        "--state",
        required=True,
        metavar="FILE",
        help="the last checkpoint seen (created if absent)",
    )
    m.add_argument(
        "--log-key",
        metavar="KEY|@FILE",
        help="pin this key on the first run (default: the one the authority publishes then)",
    )
    m.add_argument("--json", action="store_true", help="machine-readable output")
    add_connection_options(m)
    m.set_defaults(handler=cmd_log_monitor)
