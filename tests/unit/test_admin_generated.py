"""Generated payloads at the admin function's entry point (hypothesis, 1,500 of them): every one is answered with a
JSON result (no unhandled exception, no stack trace), and one that is refused made no AWS write at all."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ecr_warden.actions.report import encode_token
from tests.fakes import REPOSITORY
from tests.fakes_exemptions import Admin

DIGEST = "sha256:" + "ab" * 32
TOKEN = encode_token(None, 0)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    st.sampled_from(
        ["", " ", "\n", "CVE-2024-6387", "2026-11-30", "2020-01-01", "a@b.co", REPOSITORY, DIGEST, "v1", TOKEN, "e30"]
    ),
)
json_values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)  # fmt: skip

VALID = {
    "release": {"repository": REPOSITORY, "digest": DIGEST, "reason": "false positive", "by": "alice"},
    "quarantine": {"repository": REPOSITORY, "tag": "v1", "reason": "leaked key", "by": "carol"},
    "exempt": {
        "operation": "add", "repository": REPOSITORY, "cve": "CVE-2024-6387", "expires": "2026-11-30",
        "reason": "not reachable", "approver": "security@example.com", "by": "alice",
    },
    "rescan": {"repository": REPOSITORY, "tag": "v1", "reason": "new feed", "by": "frank"},
    "enforce": {"repository": REPOSITORY, "dry_run": True, "reason": "check", "by": "gil"},
    "report": {"limit": 5, "price_per_gb_month": 0.1, "next_token": TOKEN, "by": "lead"},
    "sweep": {"limit": 5, "next_token": TOKEN, "reason": "daily sweep", "by": "schedule"},
}  # fmt: skip
FIELDS = sorted(
    {key for payload in VALID.values() for key in payload}
    | {"action", "include_inactive", "tag", "repository", "apply", "follow"}
)


@st.composite
def near_valid(draw: st.DrawFn) -> dict[str, Any]:
    """A valid payload of some action with some fields dropped, replaced by anything, or added."""
    action = draw(st.sampled_from(sorted(VALID)))
    payload: dict[str, Any] = {"action": action, **VALID[action]}
    for name in draw(st.lists(st.sampled_from(FIELDS), max_size=3, unique=True)):
        choice = draw(st.integers(0, 2))
        if choice == 0:
            payload.pop(name, None)
        else:
            payload[name] = draw(json_values if choice == 1 else scalars)
    if draw(st.booleans()):
        payload[draw(st.text(max_size=8))] = draw(scalars)
    return payload


payloads = st.one_of(json_values, near_valid(), st.builds(dict, action=st.text(max_size=12)))


def _world() -> Admin:
    admin = Admin()
    admin.fakes.registry.create_repository()
    admin.fakes.registry.push("v1", "image")
    admin.world.registry.create(REPOSITORY)
    return admin


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(payload=payloads)
def test_every_payload_gets_a_json_answer_and_a_refusal_writes_nothing(payload: Any) -> None:
    admin = _world()
    result = admin.invoke(payload)
    text = json.dumps(result)  # JSON all the way down
    assert "Traceback" not in text
    assert isinstance(result["ok"], bool)
    if not result["ok"]:
        error = result["error"]
        assert set(error) == {"type", "field", "message"}
        assert error["type"] in ("invalid_request", "rejected", "configuration")
        assert all(isinstance(value, str) and value for value in error.values())
        assert admin.writes == 0, (payload, result)
