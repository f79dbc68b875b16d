"""Signed notes and checkpoints against the Go ``sumdb/note`` reference vector.

The key pair, the text and the signatures are those of ``golang.org/x/mod``
``sumdb/note/note_test.go`` (``TestSign``, ``TestOpen``): our verifier must
accept Go's note, and our signer (Ed25519 is deterministic) must write it
byte for byte.
"""

from __future__ import annotations

import pytest

from passgeni_core import LogProofInvalid
from passgeni_core.crypto import (
    NoteSigner,
    NoteVerifier,
    checkpoint_text,
    open_checkpoint,
    open_note,
    parse_checkpoint,
)

PETER_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
PETER_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
ENOCH_VKEY = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
PETER_SIG = "\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
ENOCH_SIG = "\u2014 EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n"


def test_the_go_reference_note_verifies() -> None:
    peter = NoteVerifier.from_key(PETER_VKEY)
    assert (peter.name, peter.key_hash) == ("PeterNeumann", 0xC74F20A3)
    assert peter.key == PETER_VKEY
    text, signers = open_note(TEXT + "\n" + PETER_SIG, [peter])
    assert (text, signers) == (TEXT, ["PeterNeumann"])
    # Both signatures, one key known: Enoch's is ignored; both known: both verified.
    assert open_note(TEXT + "\n" + PETER_SIG + ENOCH_SIG, [peter])[1] == ["PeterNeumann"]
    enoch = NoteVerifier.from_key(ENOCH_VKEY)
    assert open_note((TEXT + "\n" + PETER_SIG + ENOCH_SIG).encode(), [peter, enoch])[1] == [
        "PeterNeumann",
        "EnochRoot",
    ]


def test_our_signer_writes_the_go_reference_note() -> None:
    signer = NoteSigner.from_key(PETER_SKEY)
    assert signer.verifier.key == PETER_VKEY
    assert signer.sign(TEXT) == TEXT + "\n" + PETER_SIG
    assert signer.signer_key == PETER_SKEY
    assert "AYEKFALV" not in repr(signer)  # the seed never shows


def test_manglings_are_refused() -> None:
    peter = NoteVerifier.from_key(PETER_VKEY)
    with pytest.raises(LogProofInvalid):
        open_note(TEXT + "\n" + ENOCH_SIG, [peter])  # no signature by a known key
    bad_sig = PETER_SIG[:60] + "ABCD" + PETER_SIG[60:]
    with pytest.raises(LogProofInvalid, match="invalid signature"):
        open_note(TEXT + "\n" + bad_sig, [peter])
    for bad in (
        TEXT,
        TEXT + "\n",
        TEXT + "\n" + PETER_SIG[:-1],
        "\x01" + TEXT + "\n" + PETER_SIG,
        TEXT + "\n" + PETER_SIG + "Unexpected line.\n",
        TEXT.replace("problem,", "problem?") + "\n" + PETER_SIG,
    ):
        with pytest.raises(LogProofInvalid):
            open_note(bad, [peter])
    for key in (
        PETER_VKEY[:-1],
        PETER_VKEY.replace("c74f20a3", "c74f20a4"),
        "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
    ):
        with pytest.raises(LogProofInvalid):
            NoteVerifier.from_key(key)


def test_checkpoints_round_trip_and_name_their_log() -> None:
    signer = NoteSigner.generate("passgeni.example.com/log")
    root = bytes(range(32))
    note = signer.sign(checkpoint_text("passgeni.example.com/log", 42, root))
    lines = note.split("\n")
    assert lines[:3] == [
        "passgeni.example.com/log",
        "42",
        "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
    ]
    assert lines[3] == "" and lines[4].startswith("\u2014 passgeni.example.com/log ")
    checkpoint = open_checkpoint(note, signer.verifier, origin="passgeni.example.com/log")
    assert (checkpoint.size, checkpoint.root, checkpoint.note) == (42, root, note)
    with pytest.raises(LogProofInvalid, match="not 'other/log'"):
        open_checkpoint(note, signer.verifier, origin="other/log")
    other = NoteSigner.generate("passgeni.example.com/log")
    with pytest.raises(LogProofInvalid):
        open_checkpoint(note, other.verifier)
    with pytest.raises(LogProofInvalid):
        parse_checkpoint("origin\n-1\nAAAA\n")
    # Extension lines after the root are allowed.
    assert parse_checkpoint(checkpoint_text("o", 1, root) + "ext\n").size == 1
