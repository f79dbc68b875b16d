"""The core stays pure: importing it (and running its CLI's local commands)
loads no integration, web framework or sibling package. `lint-imports` checks
the static import graph in `make test`; this checks what really gets loaded."""

from __future__ import annotations

import json
import subprocess
import sys

FORBIDDEN = [
    "hvac", "boto3", "botocore", "kubernetes", "kopf", "ansible", "fastapi", "starlette",
    "uvicorn", "flask", "django", "aiohttp", "sqlalchemy", "passgeni_authority",
    "vault_plugin_helper", "k8s_operator_hooks", "terraform_external",
]  # fmt: skip


def test_importing_the_core_loads_no_forbidden_module() -> None:
    code = (
        "import sys, json, passgeni_core, passgeni_core.cli\n"
        "from passgeni_core import GenerationParameters, generate\n"
        "generate(GenerationParameters.for_preset('nist-800-63b'))\n"
        "print(json.dumps(sorted(m.split('.')[0] for m in sys.modules)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    loaded = set(json.loads(out))
    assert not loaded & set(FORBIDDEN), loaded & set(FORBIDDEN)
