"""AuthorityClient transport behaviour against a real (stdlib) HTTP server.

The server here is a small scripted ``http.server`` used only for what a real
authority cannot be made to do on demand: answer 503/429 on cue, time out,
redirect, send arbitrary error bodies, lie in a certificate. It records every
byte it receives, which is how the no-secret-on-the-wire property is proven.
The end-to-end contract against the real ``passgeni_authority`` lives in
``test_provision.py`` and ``test_cli_remote.py``.
"""

from __future__ import annotations

import pytest

from passgeni_core import (
    AuthorityClient,
    InvalidRequest,
)

API_KEY = "pgk_test_SECRET_api_key_0123456789"


def test_repr_and_errors_never_show_the_api_key() -> None:
    client = AuthorityClient("https://authority.example/", API_KEY)
    assert API_KEY not in repr(client) and API_KEY not in str(client)
    assert "'***'" in repr(client) and client.base_url == "https://authority.example"
    assert "api_key=None" in repr(AuthorityClient("https://a.example"))


@pytest.mark.parametrize(
    "url",
    [
        "ftp://a.example",
        "a.example",
        "https://u:p@a.example",
        "https://a.example/?x=1",
        "https://a#f",
    ],
)
def test_base_url_is_validated(url: str) -> None:
    with pytest.raises(InvalidRequest):
        AuthorityClient(url)
