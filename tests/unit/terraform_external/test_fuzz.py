"""Fuzzed stdin: whatever arrives, the program answers per the external-program protocol.

Either exit 0 with exactly one flat JSON object of strings on stdout, or a
non-zero exit with exactly one line on stderr and nothing on stdout; never a
traceback. Runs in validate-only mode (``PASSGENI_TF_VALIDATE_ONLY=1``) so no
service is contacted: the full protocol with services is in test_protocol.py.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys

from hypothesis import HealthCheck, given, settings, strategies as st

from terraform_external import main
from terraform_external._query import KNOWN_KEYS

ENV = {"PASSGENI_TF_VALIDATE_ONLY": "1"}

json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)
plausible_values = st.one_of(
    st.sampled_from(
        [
            "soc2",
            "pci-dss",
            "hipaa",
            "true",
            "false",
            "20",
            "0",
            "-1",
            "store",
            "read",
            "ensure",
            "return",
            "",
            "vault://secret/a/b#k",
            "aws-sm://x#y",
            "k8s://ns/n",
            "vault://secret",
            "nope://",
            " 12 ",
            "1e3",
            "9" * 30,
            "\u00e9",
            "@/\"'\\",
        ]
    ),
    st.text(max_size=40),
)
queries = st.dictionaries(
    st.sampled_from(sorted(KNOWN_KEYS | {"api_key", "unknown"})), plausible_values, max_size=8
)


def check(stdin: bytes) -> None:
    out, err = io.StringIO(), io.StringIO()
    code = main([], stdin=io.BytesIO(stdin), stdout=out, stderr=err, environ=ENV)
    if code == 0:
        data = json.loads(out.getvalue())
        assert isinstance(data, dict)
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in data.items())
        assert err.getvalue() == ""
    else:
        assert out.getvalue() == ""
        lines = err.getvalue().splitlines()
        assert len(lines) == 1 and lines[0].startswith("passgeni-terraform-external: error [")
        assert "Traceback" not in err.getvalue()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300))
def test_arbitrary_bytes(data: bytes) -> None:
    check(data)


@settings(max_examples=150, deadline=None)
@given(json_values)
def test_arbitrary_json_documents(value: object) -> None:
    check(json.dumps(value).encode())


@settings(max_examples=500, deadline=None)
@given(queries)
def test_plausible_queries(query: dict[str, str]) -> None:
    check(json.dumps(query).encode())


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(sorted(KNOWN_KEYS)), json_values, max_size=5))
def test_queries_with_non_string_values(query: dict[str, object]) -> None:
    check(json.dumps(query).encode())


@settings(max_examples=12, deadline=None)
@given(st.one_of(st.binary(max_size=100), queries.map(lambda q: json.dumps(q).encode())))
def test_real_process(data: bytes) -> None:
    """The same property through a real process (no in-process shortcut)."""
    done = subprocess.run(
        [sys.executable, "-m", "terraform_external"],
        input=data,
        capture_output=True,
        env={"PASSGENI_TF_VALIDATE_ONLY": "1", "PATH": "/usr/bin:/bin"},
        timeout=30,
        check=False,
    )
    if done.returncode == 0:
        assert json.loads(done.stdout) == {}
        assert done.stderr == b""
    else:
        assert done.stdout == b""
        assert len(done.stderr.decode().splitlines()) == 1
        assert b"Traceback" not in done.stderr
