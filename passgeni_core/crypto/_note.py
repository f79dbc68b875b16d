"""C2SP signed notes (Ed25519) and tlog checkpoints.

A *signed note* (https://c2sp.org/signed-note, the format of Go's
``golang.org/x/mod/sumdb/note``) is UTF-8 text ending in a newline, a blank
line, then one line per signature: ``— <name> <base64(key hash || signature)>``.
The key hash is the first four bytes of ``SHA-256(name || "\\n" || 0x01 ||
public key)``; an Ed25519 signature covers the text exactly (with its final
newline). A verifier key is written ``<name>+<key hash, 8 hex>+<base64(0x01 ||
public key)>``, a signer key ``PRIVATE+KEY+<name>+<key hash>+<base64(0x01 ||
seed)>``.

A *checkpoint* (https://c2sp.org/tlog-checkpoint) is the note text
``<origin>\\n<tree size>\\n<base64 root hash>\\n`` (optionally followed by
extension lines), signed by the log.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from .._errors import LogProofInvalid

__all__ = [
    "Checkpoint",
    "NoteSigner",
    "NoteVerifier",
    "checkpoint_text",
    "open_checkpoint",
    "open_note",
    "parse_checkpoint",
]

_ALG_ED25519 = 1
_SIG_PREFIX = "\u2014 "  # an em dash and a space
#: At most this many signature lines (as Go's note package).
_MAX_SIGNATURES = 100
#: A note this large is refused before it is parsed.
_MAX_NOTE_BYTES = 1 << 16
_DECIMAL_RE = re.compile(r"^(0|[1-9][0-9]{0,19})$")


def _valid_name(name: str) -> bool:
    return bool(name) and "+" not in name and not any(c.isspace() for c in name)


def _key_hash(name: str, key: bytes) -> int:
    digest = hashlib.sha256(name.encode() + b"\n" + key).digest()
    return int.from_bytes(digest[:4], "big")


def _b64(value: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise LogProofInvalid("not standard base64") from None


@dataclass(frozen=True)
class NoteVerifier:
    """The public key of a note signer, by name and key hash."""

    name: str
    key_hash: int
    public_key: bytes  # 32 bytes, Ed25519

    @classmethod
    def from_key(cls, vkey: str) -> NoteVerifier:
        """Parse a verifier key ``name+hash+base64``.

        Raises:
            LogProofInvalid: the key is malformed or its hash does not match.
        """
        parts = vkey.strip().split("+", 2)
        if (
            len(parts) != 3
            or not _valid_name(parts[0])
            or not re.fullmatch("[0-9a-f]{8}", parts[1])
        ):
            raise LogProofInvalid("malformed note verifier key")
        name, hash_hex, encoded = parts
        key = _b64(encoded)
        if len(key) != 33 or key[0] != _ALG_ED25519:
            raise LogProofInvalid("note verifier key is not an Ed25519 key")
        if _key_hash(name, key) != int(hash_hex, 16):
            raise LogProofInvalid("note verifier key hash does not match its key")
        return cls(name=name, key_hash=int(hash_hex, 16), public_key=key[1:])

    @property
    def key(self) -> str:
        """The verifier key string."""
        encoded = base64.b64encode(bytes([_ALG_ED25519]) + self.public_key).decode()
        return f"{self.name}+{self.key_hash:08x}+{encoded}"

    def verify(self, message: bytes, signature: bytes) -> bool:
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(signature, message)
        except (InvalidSignature, ValueError):
            return False
        return True


class NoteSigner:
    """An Ed25519 note signer. Its seed is never shown (``repr`` names the key only)."""

    def __init__(self, name: str, seed: bytes) -> None:
        if not _valid_name(name):
            raise ValueError("a note key name is non-empty, without '+' or spaces")
        if len(seed) != 32:
            raise ValueError("an Ed25519 seed is 32 bytes")
        self._private = Ed25519PrivateKey.from_private_bytes(seed)
        public = self._private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.verifier = NoteVerifier(
            name=name,
            key_hash=_key_hash(name, bytes([_ALG_ED25519]) + public),
            public_key=public,
        )

    def __repr__(self) -> str:
        return f"NoteSigner({self.verifier.key!r})"

    @classmethod
    def generate(cls, name: str) -> NoteSigner:
        seed = Ed25519PrivateKey.generate().private_bytes_raw()
        return cls(name, seed)

    @classmethod
    def from_key(cls, skey: str) -> NoteSigner:
        """Parse a signer key ``PRIVATE+KEY+name+hash+base64``.

        Raises:
            LogProofInvalid: the key is malformed (the message never shows it).
        """
        parts = skey.strip().split("+", 4)
        if len(parts) != 5 or parts[:2] != ["PRIVATE", "KEY"] or not _valid_name(parts[2]):
            raise LogProofInvalid("malformed note signer key")
        try:
            key = base64.b64decode(parts[4], validate=True)
        except (binascii.Error, ValueError):
            raise LogProofInvalid("malformed note signer key") from None
        if len(key) != 33 or key[0] != _ALG_ED25519:
            raise LogProofInvalid("note signer key is not an Ed25519 key")
        signer = cls(parts[2], key[1:])
        if parts[3] != f"{signer.verifier.key_hash:08x}":
            raise LogProofInvalid("note signer key hash does not match its key")
        return signer

    @property
    def signer_key(self) -> str:
        """The secret signer key string (store it as a secret)."""
        seed = self._private.private_bytes_raw()
        encoded = base64.b64encode(bytes([_ALG_ED25519]) + seed).decode()
        v = self.verifier
        return f"PRIVATE+KEY+{v.name}+{v.key_hash:08x}+{encoded}"

    def sign(self, text: str) -> str:
        """The signed note of ``text`` (which must end in a newline)."""
        _check_text(text)
        signature = self._private.sign(text.encode())
        blob = self.verifier.key_hash.to_bytes(4, "big") + signature
        return f"{text}\n{_SIG_PREFIX}{self.verifier.name} {base64.b64encode(blob).decode()}\n"


def _check_text(text: str) -> None:
    if not text.endswith("\n") or any((ord(c) < 0x20 and c != "\n") or c == "\x7f" for c in text):
        raise LogProofInvalid("malformed note")


def open_note(note: str | bytes, verifiers: list[NoteVerifier]) -> tuple[str, list[str]]:
    """Verify a signed note: its text and the names of the verifiers that signed it.

    Signatures by keys not among ``verifiers`` are ignored; one that names a
    known key but does not verify is an error.

    Raises:
        LogProofInvalid: malformed, a bad signature, or no signature by any of ``verifiers``.
    """
    if isinstance(note, bytes):
        if len(note) > _MAX_NOTE_BYTES:
            raise LogProofInvalid("note too large")
        try:
            note = note.decode("utf-8")
        except UnicodeDecodeError:
            raise LogProofInvalid("malformed note: not UTF-8") from None
    if len(note) > _MAX_NOTE_BYTES:
        raise LogProofInvalid("note too large")
    split = note.rfind("\n\n")
    if split < 0 or not note.endswith("\n"):
        raise LogProofInvalid("malformed note")
    text, sig_block = note[: split + 1], note[split + 2 :]
    _check_text(text)
    lines = sig_block[:-1].split("\n")
    if len(lines) > _MAX_SIGNATURES:
        raise LogProofInvalid("malformed note: too many signatures")
    by_id = {(v.name, v.key_hash): v for v in verifiers}
    signed: list[str] = []
    for line in lines:
        if not line.startswith(_SIG_PREFIX):
            raise LogProofInvalid("malformed note: a line of its signatures is not one")
        name, _, encoded = line[len(_SIG_PREFIX) :].partition(" ")
        if not _valid_name(name) or not encoded or " " in encoded:
            raise LogProofInvalid("malformed note signature line")
        blob = _b64(encoded)
        if len(blob) < 5:
            raise LogProofInvalid("malformed note signature line")
        key_hash = int.from_bytes(blob[:4], "big")
        verifier = by_id.get((name, key_hash))
        if verifier is None:
            continue
        if not verifier.verify(text.encode(), blob[4:]):
            raise LogProofInvalid(f"invalid signature for key {name}+{key_hash:08x}")
        if name not in signed:
            signed.append(name)
    if not signed:
        raise LogProofInvalid("the note has no signature by a known key")
    return text, signed


@dataclass(frozen=True)
class Checkpoint:
    """A tlog checkpoint: the log's origin, its size and its root hash."""

    origin: str
    size: int
    root: bytes
    #: The signed note it came from (empty for one built locally).
    note: str = ""


def checkpoint_text(origin: str, size: int, root: bytes) -> str:
    """The note text of a checkpoint (to sign)."""
    if not origin or "\n" in origin or size < 0 or len(root) != 32:
        raise ValueError("a checkpoint has an origin line, a size >= 0 and a 32-byte root")
    return f"{origin}\n{size}\n{base64.b64encode(root).decode()}\n"


def parse_checkpoint(text: str) -> Checkpoint:
    """The checkpoint in a note's text (extension lines are allowed and ignored).

    Raises:
        LogProofInvalid: not a checkpoint.
    """
    lines = text.split("\n")
    if len(lines) < 4 or not lines[0] or not _DECIMAL_RE.match(lines[1]):
        raise LogProofInvalid("malformed checkpoint")
    root = _b64(lines[2])
    if len(root) != 32:
        raise LogProofInvalid("malformed checkpoint: the root hash is not 32 bytes")
    return Checkpoint(origin=lines[0], size=int(lines[1]), root=root)


def open_checkpoint(
    note: str | bytes, verifier: NoteVerifier, *, origin: str | None = None
) -> Checkpoint:
    """Verify a signed checkpoint with the log's key (and its origin, when given).

    Raises:
        LogProofInvalid: malformed, not signed by ``verifier``, or another log's.
    """
    text, _signers = open_note(note, [verifier])
    checkpoint = parse_checkpoint(text)
    if origin is not None and checkpoint.origin != origin:
        raise LogProofInvalid(
            f"the checkpoint is of log {checkpoint.origin[:80]!r}, not {origin[:80]!r}"
        )
    full = note.decode() if isinstance(note, bytes) else note
    return Checkpoint(checkpoint.origin, checkpoint.size, checkpoint.root, full)
