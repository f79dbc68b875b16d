"""The store protocol in the core: URI grammar, discovery by scheme, and the nothing-lost
write order, with failures injected between steps on a real OpenBao and the real authority."""

from __future__ import annotations

import pytest

from passgeni_core import (
    InvalidStoreURI,
    StoreURI,
    parse_store_uri,
)


@pytest.mark.parametrize(
    ("text", "scheme", "location", "key", "canonical"),
    [
        ("vault://secret/app/db#password", "vault", "secret/app/db", "password", None),
        ("vault://secret/app/db", "vault", "secret/app/db", "password", "vault://secret/app/db#password"),
        ("vault://kv/a/b/c.d-e_f@g#db.pass-1", "vault", "kv/a/b/c.d-e_f@g", "db.pass-1", None),
        ("aws-sm://prod/db-creds#pw", "aws-sm", "prod/db-creds", "pw", None),
        ("aws-sm://name+x=y.z@q", "aws-sm", "name+x=y.z@q", "password", "aws-sm://name+x=y.z@q#password"),
        ("k8s://default/db-secret#password", "k8s", "default/db-secret", "password", None),
        ("k8s://team-a/app.creds", "k8s", "team-a/app.creds", "password", "k8s://team-a/app.creds#password"),
    ],
)  # fmt: skip
def test_uri_grammar_accepts(
    text: str, scheme: str, location: str, key: str, canonical: str | None
) -> None:
    uri = parse_store_uri(text)
    assert (uri.scheme, uri.location, uri.key, uri.prefix) == (scheme, location, key, False)
    assert str(uri) == (canonical or text)
    assert parse_store_uri(str(uri)) == StoreURI(scheme, location, key, True, False)
    assert uri.target_path == f"{location}#{key}"


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("secret/app/db", "missing '://'"),
        ("Vault://secret/a", "lower-case"),
        ("vault://secret", "MOUNT/PATH"),
        ("vault://", "missing MOUNT"),
        ("vault://secret//db", "empty path segment"),
        ("vault://secret/../db", "'.' or '..'"),
        ("vault:///secret/db", "start with '/'"),
        ("vault://secret/a b", "whitespace"),
        ("vault://secret/a%2Fb", "percent"),
        ("vault://secret/a?x=1", "query"),
        ("vault://secret/a#", "empty key"),
        ("vault://secret/a#k/ey", "the key may only"),
        ("vault://secret/a#pw.passgeni-cert-id", "reserved"),
        ("vault://secret/a#" + "k" * 129, "1-128"),
        ("vault://secret/é", "non-ASCII"),
        ("aws-sm://", "missing the secret NAME"),
        ("aws-sm://arn:aws:secretsmanager:us-east-1:1:secret:x", "an ARN here is arn:"),
        ("aws-sm://a//b", "'//'"),
        ("k8s://default", "NAMESPACE/NAME"),
        ("k8s://Default/x", "RFC 1123 label"),
        ("k8s://default/Upper", "RFC 1123 subdomain"),
        ("k8s://a/b/c", "NAMESPACE/NAME"),
        ("k8s://default/x_y", "RFC 1123 subdomain"),
    ],
)
def test_uri_grammar_rejects_with_a_reason(text: str, why: str) -> None:
    with pytest.raises(InvalidStoreURI) as info:
        parse_store_uri(text)
    assert why in info.value.message
    assert "\n" not in info.value.message and info.value.code == "invalid_store_uri"


def test_prefix_form_for_listing() -> None:
    assert parse_store_uri("vault://secret", allow_prefix=True).prefix
    assert parse_store_uri("vault://secret/app/", allow_prefix=True).location == "secret/app"
    assert parse_store_uri("aws-sm://", allow_prefix=True).location == ""
    assert parse_store_uri("k8s://team-a", allow_prefix=True).parts == ("team-a",)
    assert str(parse_store_uri("vault://secret", allow_prefix=True)) == "vault://secret"
    with pytest.raises(InvalidStoreURI):
        parse_store_uri(parse_store_uri("vault://secret", allow_prefix=True))


def test_store_settings_pass_only_what_the_backend_lists() -> None:
    from passgeni_core import InvalidRequest, register_store, store_settings

    class Listed:
        settings = ("colour",)

        @classmethod
        def from_uri(cls, uri: StoreURI, **options: object) -> object:
            return cls()

    register_store("listed", Listed.from_uri)  # type: ignore[arg-type]
    try:
        assert store_settings("listed", None) == {}
        assert store_settings("listed", {"colour": "blue"}) == {"colour": "blue"}
        with pytest.raises(InvalidRequest, match=r"'shape' .* takes: colour"):
            store_settings("listed", {"shape": "round"})
        with pytest.raises(InvalidRequest, match="must be a string"):
            store_settings("listed", {"colour": 3})
        with pytest.raises(InvalidRequest, match="takes: proof_location"):
            store_settings("memory", {"colour": "blue"})
        assert store_settings("memory", {"proof_location": "inline"}) == {
            "proof_location": "inline"
        }
    finally:
        register_store("listed", None)
