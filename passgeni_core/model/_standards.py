"""Which standards a set of parameters satisfies.

A certificate lists every standard the parameters meet, recomputed here from
the parameters alone (never taken from a request), so it can never claim
more than the parameters support.

FIPS 140-3 is special: it is a claim about the entropy source, not about the
password's shape. Two policies:

* ``fips_strict=False`` (library default): the FIPS 140-3 profile is counted
  as met when the parameters meet it, and the certificate's
  ``entropy_source.fips_mode`` records whether the host was in FIPS mode, so a
  verifier sees exactly what was true. This keeps zero-knowledge local use and
  the embedded authority working on ordinary hosts, where nobody could prove
  FIPS mode anyway.
* ``fips_strict=True``: FIPS 140-3 is never claimed unless the entropy source
  reports FIPS mode.

An authority decides by its written rule instead (``fips_ok``, from
:func:`~passgeni_core.model.decide_fips`: ``strict-v1`` also needs its own host
observed in FIPS mode), and states the rule in the certificate.
"""

from __future__ import annotations

from .._errors import PresetNotMet
from ._entropy_source import EntropySource
from ._params import GenerationParameters
from ._presets import Preset, get_preset, list_presets

__all__ = ["check_preset", "standards_met"]


def standards_met(
    parameters: GenerationParameters,
    *,
    entropy_source: EntropySource | None = None,
    fips_strict: bool = False,
    fips_ok: bool | None = None,
) -> list[str]:
    """Ids of every preset the parameters satisfy, in table order.

    ``fips_ok``, when given, is the decision of a FIPS rule and replaces the
    ``fips_strict`` test of ``entropy_source``.
    """
    if fips_ok is None:
        fips_ok = (not fips_strict) or bool(entropy_source and entropy_source.fips_mode)
    return [p.id for p in list_presets() if parameters.meets(p, fips_mode=fips_ok)]


def check_preset(
    preset: str | Preset,
    parameters: GenerationParameters,
    *,
    entropy_source: EntropySource | None = None,
    fips_strict: bool = False,
    fips_ok: bool | None = None,
) -> Preset:
    """Return the preset if the parameters meet it.

    Raises:
        UnknownPreset: no such preset.
        PresetNotMet: the parameters fall short; the message says how.
    """
    p = get_preset(preset) if isinstance(preset, str) else preset
    if fips_ok is None:
        fips_ok = (not fips_strict) or bool(entropy_source and entropy_source.fips_mode)
    reason = parameters.shortfall(p, fips_mode=fips_ok)
    if reason:
        raise PresetNotMet(f"parameters do not meet preset {p.id}: {reason}")
    return p
