"""Describes where the randomness came from.

The descriptor goes into every certificate. The FIPS 140-3 claim depends on
it: the operating system's CSPRNG is only a FIPS-validated source while the
kernel runs in FIPS mode. Detecting that reads a file, which is I/O, so it is
done once at the edge (CLI, authority start-up) with :func:`detect_entropy_source`
and the result is passed down; nothing deeper in the core reads the host.
"""

from __future__ import annotations

import os
import platform
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._errors import InvalidParameters

__all__ = ["FIPS_FLAG_PATH", "EntropySource", "detect_entropy_source"]

FIPS_FLAG_PATH = Path("/proc/sys/crypto/fips_enabled")


@dataclass(frozen=True, kw_only=True)
class EntropySource:
    """Public description of the generator's randomness."""

    #: The API the bytes came from.
    api: str = "os.urandom"
    #: The kernel interface behind it.
    kernel_source: str = "getrandom(2)"
    #: Whether the host kernel reported FIPS mode when the password was generated.
    fips_mode: bool = False
    platform: str = ""
    python: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "api": self.api,
            "kernel_source": self.kernel_source,
            "fips_mode": self.fips_mode,
            "platform": self.platform,
            "python": self.python,
        }

    @classmethod
    def from_dict(cls, data: object) -> EntropySource:
        """Parse a descriptor (from a request or a certificate).

        Raises:
            InvalidParameters: not an object, unknown fields or wrong types.
        """
        if not isinstance(data, dict):
            raise InvalidParameters("entropy_source must be a JSON object")
        allowed = {"api", "kernel_source", "fips_mode", "platform", "python"}
        unknown = sorted(str(k)[:40] for k in data if k not in allowed)
        if unknown:
            raise InvalidParameters(f"unknown entropy_source field(s): {', '.join(unknown)}")
        if not isinstance(data.get("fips_mode", False), bool):
            raise InvalidParameters("entropy_source.fips_mode must be true or false")
        for key in ("api", "kernel_source", "platform", "python"):
            value = data.get(key, "")
            if not isinstance(value, str) or len(value) > 128:
                raise InvalidParameters(
                    f"entropy_source.{key} must be a string of at most 128 characters"
                )
        return cls(
            api=data.get("api", "os.urandom"),
            kernel_source=data.get("kernel_source", "getrandom(2)"),
            fips_mode=data.get("fips_mode", False),
            platform=data.get("platform", ""),
            python=data.get("python", ""),
        )


def detect_entropy_source(*, fips_flag_path: Path = FIPS_FLAG_PATH) -> EntropySource:
    """Describe this host's CSPRNG, reading the kernel's FIPS flag.

    A missing or unreadable flag file means "not in FIPS mode": claiming FIPS
    without positive evidence would be false evidence.
    """
    try:
        fips = fips_flag_path.read_text().strip() == "1"
    except OSError:
        fips = False
    kernel = "getrandom(2)" if hasattr(os, "getrandom") else "platform CSPRNG"
    return EntropySource(
        api="os.urandom",
        kernel_source=kernel,
        fips_mode=fips,
        platform=f"{platform.system()} {platform.release()}".strip(),
        python=f"{sys.implementation.name} {platform.python_version()}",
    )
