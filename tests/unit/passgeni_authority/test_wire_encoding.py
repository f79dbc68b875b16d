"""The authority's two JSON encoders of wire Structs write the same bytes."""

from __future__ import annotations

import base64
import os

from passgeni_authority._issuance_http import dumps, dumps_flat
from passgeni_core.client import GenerationBatchBody


def test_the_session_batch_encodes_identically_through_either_encoder() -> None:
    batch = GenerationBatchBody(
        generation_session_ids=[
            base64.urlsafe_b64encode(os.urandom(150)).decode() for _ in range(50)
        ],
        expires_in=60,
        compliance_standard="soc2",
        standards_met=("nist-800-63b", "soc2"),
        entropy_bits=104.59,
        naive_entropy_bits=None,
        parameters={"length": 20, "symbols": "!#é", "upper": True},
        mapping_version="2026.11-1",
    )
    assert dumps_flat(batch) == dumps(batch)
    assert dumps(batch).startswith(b'{"generation_session_ids":["')
