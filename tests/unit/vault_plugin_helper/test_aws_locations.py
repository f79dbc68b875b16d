"""``aws-sm://`` locations (names and full ARNs) and the one AWS tag rule (no server)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, strategies as st

from passgeni_core import InvalidStoreURI, StoreLimitExceeded, parse_store_uri
from vault_plugin_helper import _rotation_steps, aws
from vault_plugin_helper._aws_arn import parse_secret_arn
from vault_plugin_helper._aws_tags import tag_text_ok

NAME_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789/_+=.@-"
names = st.text(NAME_CHARS, min_size=1, max_size=60).filter(
    lambda n: "//" not in n and not n.startswith("/") and not n.endswith("/")
)
suffixes = st.text(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", min_size=6, max_size=6
)
regions = st.sampled_from(
    ["us-east-1", "eu-west-3", "ap-southeast-2", "us-gov-west-1", "cn-north-1"]
)
partitions = st.sampled_from(["aws", "aws-cn", "aws-us-gov"])
accounts = st.text("0123456789", min_size=12, max_size=12)
keys = st.from_regex(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,20}", fullmatch=True).filter(
    lambda k: ".passgeni-" not in k
)


@given(partitions, regions, accounts, names, suffixes, keys)
def test_a_full_arn_parses_with_its_colons_and_round_trips(
    partition: str, region: str, account: str, name: str, suffix: str, key: str
) -> None:
    arn = f"arn:{partition}:secretsmanager:{region}:{account}:secret:{name}-{suffix}"
    uri = parse_store_uri(f"aws-sm://{arn}#{key}")
    assert (uri.location, uri.key, uri.explicit_key, uri.prefix) == (arn, key, True, False)
    assert parse_store_uri(str(uri)) == uri
    assert uri.target_path == f"{arn}#{key}"
    parsed = parse_secret_arn(uri.location)
    assert parsed is not None
    assert (parsed.partition, parsed.region, parsed.account) == (partition, region, account)
    assert parsed.name == name
    # Without #KEY the key defaults, and the ARN is still one credential (not a prefix).
    bare = parse_store_uri(f"aws-sm://{arn}")
    assert bare.location == arn and bare.key == "password" and not bare.prefix


@given(regions, accounts, names)
def test_a_partial_arn_is_refused(region: str, account: str, name: str) -> None:
    arn = f"arn:aws:secretsmanager:{region}:{account}:secret:{name}"
    if re.fullmatch(r".+-[A-Za-z0-9]{6}", name):
        return  # indistinguishable from a full ARN, as for AWS itself
    with pytest.raises(InvalidStoreURI, match="partial ARN"):
        parse_store_uri(f"aws-sm://{arn}")


@pytest.mark.parametrize(
    "location",
    [
        "arn:aws:ssm:us-east-1:123456789012:parameter/x-abcdef",
        "arn:aws:secretsmanager:us-east-1:12345:secret:x-abcdef",
        "arn:aws:secretsmanager:US-EAST-1:123456789012:secret:x-abcdef",
        "arn:aws:secretsmanager:us-east-1:123456789012:key:x-abcdef",
        "arn:aws:secretsmanager::123456789012:secret:x-abcdef",
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:a//b-abcdef",
        "db:app",
    ],
)
def test_malformed_arns_and_names_are_refused_with_the_form(location: str) -> None:
    with pytest.raises(InvalidStoreURI, match=r"aws-sm://arn:aws:secretsmanager:REGION"):
        parse_store_uri(f"aws-sm://{location}")


@given(st.text(max_size=80))
def test_any_text_parses_or_is_refused_cleanly(text: str) -> None:
    try:
        uri = parse_store_uri(f"aws-sm://{text}", allow_prefix=True)
    except InvalidStoreURI as exc:
        assert "\n" not in str(exc)
        return
    again = parse_store_uri(str(uri), allow_prefix=True)  # the canonical form names the key
    assert (again.location, again.key, again.prefix) == (uri.location, uri.key, uri.prefix)


def test_names_still_parse_and_the_prefix_form_is_kept() -> None:
    assert parse_store_uri("aws-sm://prod/db#pw").location == "prod/db"
    assert parse_store_uri("aws-sm://", allow_prefix=True).prefix
    assert parse_store_uri("aws-sm://prod/", allow_prefix=True).prefix


# --- the one tag rule -------------------------------------------------------------------------


def test_the_rotation_handler_uses_the_stores_tag_rule() -> None:
    """The Lambda once had its own ASCII regex (``\\w``/``\\s``): it refused ``Zürich`` and
    accepted a tab, the opposite of ``aws.validate_tag``. Now there is one function."""
    assert _rotation_steps.validate_tag is aws.validate_tag
    assert not any(isinstance(v, re.Pattern) for v in vars(_rotation_steps).values())


@given(st.text(max_size=40))
def test_validate_tag_accepts_exactly_what_aws_allows(value: str) -> None:
    allowed = all(c.isalpha() or c.isdigit() or c in " +-=._:/@" for c in value)
    assert tag_text_ok(value) == allowed
    if allowed:
        aws.validate_tag("passgeni-cert-url", value, where="t")
    else:
        with pytest.raises(StoreLimitExceeded, match="letters, digits"):
            aws.validate_tag("passgeni-cert-url", value, where="t")


@pytest.mark.parametrize(("value", "ok"), [("Zürich", True), ("tab\there", False), ("a\nb", False)])
def test_the_old_contradictions_are_gone(value: str, ok: bool) -> None:
    if ok:
        aws.validate_tag("k", value, where="t")
    else:
        with pytest.raises(StoreLimitExceeded):
            aws.validate_tag("k", value, where="t")


def test_kms_key_id_shape_is_checked_before_any_call() -> None:
    store = aws.SecretsManagerStore(
        region_name="us-east-1", endpoint_url="http://127.0.0.1:9", environ={}
    )
    assert store.kms_key_id is None
    env = {"PASSGENI_AWS_KMS_KEY_ID": "alias/app"}
    store = aws.SecretsManagerStore(
        region_name="us-east-1", endpoint_url="http://127.0.0.1:9", environ=env
    )
    assert store.kms_key_id == "alias/app" and "alias/app" in repr(store)
    explicit = aws.SecretsManagerStore(
        region_name="us-east-1", endpoint_url="http://127.0.0.1:9", kms_key_id="k-1", environ=env
    )
    assert explicit.kms_key_id == "k-1"
    from passgeni_core import InvalidRequest

    with pytest.raises(InvalidRequest, match="kms_key_id"):
        aws.SecretsManagerStore(region_name="us-east-1", kms_key_id="has space", environ={})
