"""Testing aids for PassGeni users and backend authors, on the public API only.

:class:`FakeAuthority`
    an in-process authority: real ES256 certificates and a real
    :class:`~passgeni_core.client.AuthorityClient` talking to it through a
    ``requests`` transport adapter, no server.
:class:`BackendConformance`
    the backend conformance suite: subclass it with ``make_store`` and
    ``make_uri`` to check a :class:`~passgeni_core.stores.SecretStore`
    implementation (see ``docs/stores.md``); it also implements ``consumed_value``.
:func:`provision_generated`
    the nothing-lost write order by hand (prepare, certify, proof record, value,
    metadata) for a credential generated with a generation proof.

Imports are lazy (see ``passgeni_core._lazy``): a name's module loads on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

_EXPORTS: dict[str, tuple[str, ...]] = {
    "._authority": ("FakeAuthority", "IssuedToken", "low_s_token"),
    "._conformance": ("BackendConformance",),
    "._steps": ("provision_generated", "write_both"),
}

__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS)

if TYPE_CHECKING:
    from ._authority import (
        FakeAuthority as FakeAuthority,
        IssuedToken as IssuedToken,
        low_s_token as low_s_token,
    )
    from ._conformance import BackendConformance as BackendConformance
    from ._steps import provision_generated as provision_generated, write_both as write_both
