"""The password generator: uniform over every string the parameters allow.

Randomness comes from the operating system's CSPRNG (``os.urandom`` and
``secrets``), or, for a certified credential, from the published generator of
:mod:`._derive`: a SHAKE-256 stream of the client's seed, the authority's nonce
and the parameters, fed to the same sampler (:meth:`Sampler.derive`), so that
whoever holds the seed can re-derive the password and prove it was generated.

Uniformity. Characters are drawn uniformly from the whole pool by rejection on
random bytes (a byte ``b`` is kept only when ``b < 256 - 256 % pool``, then
mapped to ``pool[b % pool]``), so every string of the right length is equally
likely; strings that miss a constraint are rejected and a fresh whole string is
drawn. Conditioning a uniform distribution on a set leaves it uniform on that
set. "Fill the minimums, then shuffle" is not used: it over-weights strings
with exactly the minimum of a class.

When the constraints reject almost everything (acceptance below 1%, e.g.
10 digits required in 12 characters), rejection would be slow, so an exact
sampler is used instead: draw the class composition ``(k_1..k_c)`` with
probability proportional to the number of valid strings having it (exact
integer weights from the same counts as the entropy), place the class labels by
a uniform random permutation, then draw each character uniformly inside its
class. Each valid string then has probability exactly ``1 / count``: the
same distribution, reached faster.

Speed. Random bytes are drawn in bulk and mapped with ``bytes.translate`` in C;
constraint checks count class codes with ``bytes.count``.
"""

from __future__ import annotations

import math
import os
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache

from ._breach import BreachCheck, breach_list
from ._entropy import EntropyReport, count_compositions, entropy_report, suffix_tables
from ._entropy_source import EntropySource
from ._params import GenerationParameters
from ._presets import CLASS_NAMES
from ._standards import standards_met

__all__ = ["GeneratedPassword", "generate", "generate_many", "generate_password"]

#: Below this acceptance rate the exact composition sampler is used.
_MIN_ACCEPTANCE = 0.01
#: Bytes read at a time by the deterministic path (any size gives the same password).
_STREAM_CHUNK = 256


def stream_below(read: Callable[[int], bytes]) -> Callable[[int], int]:
    """``below(n)``: uniform on [0, n) from the byte stream ``read``, by rejection.

    ``k = (n - 1).bit_length()`` bits are taken from ``ceil(k / 8)`` big-endian
    bytes (the high bits masked off) and values ``>= n`` are drawn again;
    ``below(1)`` is 0 and reads nothing.
    """

    def below(n: int) -> int:
        if n < 1:
            raise ValueError("below(n) needs n >= 1")
        k = (n - 1).bit_length()
        if k == 0:
            return 0
        size, mask = (k + 7) // 8, (1 << k) - 1
        while True:
            value = int.from_bytes(read(size), "big") & mask
            if value < n:
                return value

    return below


class Sampler:
    """The unbiased sampler behind :func:`generate`: parameters compiled into tables.

    Built once per parameter set; public so that its exactness can be checked.
    """

    def __init__(self, params: GenerationParameters) -> None:
        pool = params.pool()
        self.params = params
        self.length = params.length
        self.names = [n for n in CLASS_NAMES if n in pool.classes]
        self.class_chars = [pool.classes[n].encode("ascii") for n in self.names]
        self.sizes = tuple(len(c) for c in self.class_chars)
        self.mins = tuple(params.minimum(n) for n in self.names)
        self.min_present = params.min_classes_present
        alphabet = b"".join(self.class_chars)
        size = len(alphabet)
        limit = 256 - 256 % size
        self.keep_ratio = limit / 256
        self.table = bytes(alphabet[b % size] if b < limit else 0 for b in range(256))
        self.delete = bytes(range(limit, 256))
        self.codes = [bytes([0x30 + i]) for i in range(len(self.names))]
        codes_for_alphabet = b"".join(
            self.codes[i] * len(chars) for i, chars in enumerate(self.class_chars)
        )
        self.class_table = bytes.maketrans(alphabet, codes_for_alphabet)
        valid = count_compositions(self.sizes, self.mins, self.length, self.min_present)
        self.acceptance = valid / size**self.length
        self.use_exact = self.acceptance < _MIN_ACCEPTANCE
        self.unconstrained = all(m == 0 for m in self.mins) and self.min_present <= 1
        self.breach = params.breach_check

    # -- rejection path ---------------------------------------------------------

    def _ok(self, candidate: bytes) -> bool:
        if self.unconstrained:
            return True
        classes = candidate.translate(self.class_table)
        present = 0
        for code, minimum in zip(self.codes, self.mins, strict=True):
            count = classes.count(code)
            if count < minimum:
                return False
            if count:
                present += 1
        return present >= self.min_present

    def _draw_rejection(self, count: int) -> list[bytes]:
        n = self.length
        out: list[bytes] = []
        want_chars = int(n * count / self.acceptance) + n
        while len(out) < count:
            nbytes = int(want_chars / self.keep_ratio) + 64
            chars = os.urandom(nbytes).translate(self.table, self.delete)
            for start in range(0, len(chars) - n + 1, n):
                candidate = chars[start : start + n]
                if self._ok(candidate):
                    out.append(candidate)
                    if len(out) == count:
                        break
            want_chars = max(n * 4, int(n * (count - len(out)) / self.acceptance) + n)
        return out

    # -- exact composition path ---------------------------------------------------

    def _draw_exact(self, below: Callable[[int], int] = secrets.randbelow) -> bytes:
        """One string by the exact composition sampler; ``below(n)`` is uniform on [0, n)."""
        n, k = self.length, len(self.sizes)
        tables = suffix_tables(self.sizes, self.mins, n)
        remaining, present = n, 0
        composition: list[int] = []
        for i in range(k):
            choices: list[tuple[int, int]] = []
            for kk in range(self.mins[i], remaining + 1):
                adds = 1 if kk else 0
                need = max(self.min_present - present - adds, 0)
                tail = sum(tables[i + 1][remaining - kk][need:])
                weight = math.comb(remaining, kk) * self.sizes[i] ** kk * tail
                if weight:
                    choices.append((kk, weight))
            pick = below(sum(w for _, w in choices))
            chosen = choices[-1][0]
            for candidate_k, weight in choices:
                if pick < weight:
                    chosen = candidate_k
                    break
                pick -= weight
            composition.append(chosen)
            present += 1 if chosen else 0
            remaining -= chosen
        labels = [i for i, kk in enumerate(composition) for _ in range(kk)]
        # Fisher-Yates with the CSPRNG: a uniform permutation of the labels.
        for j in range(len(labels) - 1, 0, -1):
            r = below(j + 1)
            labels[j], labels[r] = labels[r], labels[j]
        return bytes(self.class_chars[c][below(self.sizes[c])] for c in labels)

    # -- deterministic path (a certified credential's generator) -----------------

    def _candidates(self, read: Callable[[int], bytes]) -> Iterator[bytes]:
        """Consecutive ``length``-character blocks of the stream's kept characters.

        A byte is kept as for :meth:`_draw_rejection` (``b < limit``, mapped to
        ``pool[b % pool]``); leftover characters carry over, so the blocks do not
        depend on how many bytes are read at a time.
        """
        n = self.length
        chars = b""
        while True:
            while len(chars) < n:
                chars += read(_STREAM_CHUNK).translate(self.table, self.delete)
            candidate, chars = chars[:n], chars[n:]
            if self._ok(candidate):
                yield candidate

    def _exact_candidates(self, below: Callable[[int], int]) -> Iterator[bytes]:
        while True:
            yield self._draw_exact(below)

    def derive(self, read: Callable[[int], bytes]) -> str:
        """The one password the byte stream ``read`` determines.

        The first valid candidate that is not on the breach list: by rejection
        (:meth:`_candidates`), or, where rejection would be slow, by the exact
        sampler with ``below(n)`` taken from the stream (:func:`stream_below`).
        Uniform over the valid strings when the stream is.
        """
        banned = breach_list() if self.breach else None
        found = (
            self._exact_candidates(stream_below(read)) if self.use_exact else self._candidates(read)
        )
        for raw in found:
            text = raw.decode("ascii")
            if banned is None or text not in banned:
                return text
        raise AssertionError("unreachable: the candidates never end")  # pragma: no cover

    # -- public ---------------------------------------------------------------------

    def draw(self, count: int) -> list[str]:
        out: list[str] = []
        banned = breach_list() if self.breach else None
        while len(out) < count:
            need = count - len(out)
            batch = (
                [self._draw_exact() for _ in range(need)]
                if self.use_exact
                else self._draw_rejection(need)
            )
            for raw in batch:
                text = raw.decode("ascii")
                # Listed passwords are dropped and redrawn: uniform over the rest.
                if banned is not None and text in banned:
                    continue
                out.append(text)
        return out


@lru_cache(maxsize=128)
def _sampler(params: GenerationParameters) -> Sampler:
    return Sampler(params)


@dataclass(frozen=True, repr=False, eq=False)
class GeneratedPassword:
    """A password with the public facts a certificate states about it.

    ``repr`` and ``str`` never show the password; read ``.password``.
    """

    password: str
    parameters: GenerationParameters
    entropy: EntropyReport
    standards_met: tuple[str, ...]
    breach_check: BreachCheck | None
    entropy_source: EntropySource

    def __repr__(self) -> str:
        return (
            f"GeneratedPassword(password='***', length={self.parameters.length}, "
            f"entropy_bits={self.entropy.bits}, standards_met={list(self.standards_met)})"
        )

    __str__ = __repr__

    def public_dict(self) -> dict[str, object]:
        """Everything but the password."""
        return {
            "parameters": self.parameters.to_dict(),
            "entropy_bits": self.entropy.bits,
            "naive_entropy_bits": self.entropy.naive_bits,
            "pool_size": self.entropy.pool_size,
            "standards_met": list(self.standards_met),
            "breach_check": self.breach_check.to_dict() if self.breach_check else None,
            "entropy_source": self.entropy_source.to_dict(),
        }


def generate_password(parameters: GenerationParameters) -> str:
    """One password, uniform over the strings ``parameters`` allow."""
    return _sampler(parameters).draw(1)[0]


def generate_many(parameters: GenerationParameters, count: int) -> list[str]:
    """``count`` independent passwords (bulk rotation's fast path)."""
    if count < 0:
        raise ValueError("count must not be negative")
    return _sampler(parameters).draw(count) if count else []


def generate(
    parameters: GenerationParameters,
    *,
    entropy_source: EntropySource | None = None,
    fips_strict: bool = False,
) -> GeneratedPassword:
    """Generate one password with its entropy, standards met and breach check.

    ``entropy_source`` should come from :func:`detect_entropy_source` at the
    caller's edge; without it the source is recorded as not in FIPS mode.
    """
    return described(generate_password(parameters), parameters, entropy_source, fips_strict)


def described(
    password: str,
    parameters: GenerationParameters,
    entropy_source: EntropySource | None,
    fips_strict: bool,
) -> GeneratedPassword:
    """``password`` with the public facts a certificate states about it."""
    source = entropy_source or EntropySource()
    check = breach_list().check(password) if parameters.breach_check else None
    return GeneratedPassword(
        password=password,
        parameters=parameters,
        entropy=entropy_report(parameters),
        standards_met=tuple(
            standards_met(parameters, entropy_source=source, fips_strict=fips_strict)
        ),
        breach_check=check,
        entropy_source=source,
    )
