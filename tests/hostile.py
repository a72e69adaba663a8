"""Hypothesis strategies for the hostile-input suites: the real sample events of events/, mutated.

Each example starts from a real-shaped event and applies one to three mutations at random places: a field
dropped, a value replaced by something hostile (wrong type, huge string, unicode, control characters, invalid
digest or ARN, Slack markup), or a field added. Sometimes the whole input is replaced (not even a dict).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

from hypothesis import strategies as st

from tests.conftest import EVENTS

SLACK_MARKUP = ("<!channel>", "<!here>", "<!everyone>", "<http://evil.example|click>", "<@U024BE7LH>",
                "<#C024BE7LH>", "*bold* _it_ ~s~ `code`", "&lt;!channel&gt;", "<https://evil.example>")  # fmt: skip
INVALID_IDS = (
    "sha256:short", "sha256:" + "g" * 64, "sha512:" + "a" * 128, "sha256:" + "A" * 64, "", " ", "latest",
    "arn:aws:ecr:us-east-1:123456789012:repository/", "arn:aws:ecr:us-east-1:123:repository/x",
    "arn:aws:lambda:us-east-1:123456789012:function:f", "arn:aws:ecr:::repository/../../etc",
    "arn:aws:ecr:us-east-1:123456789012:repository/UPPER/Case", "123456789012", "1234567890123", "us-east-1x",
    "../../etc/passwd", "ses-base/api-server:v1", "ses-base//api", "-leading", "a" * 257,
)  # fmt: skip
WEIRD_TEXT = (
    "\x00", "\r\nX-Injected: 1", "\u202eevil", "🦀" * 50, "Ω≈ç√∫", "\ud7ff", "名前", "\t\n", "null", "{}", "[]",
    "%s%s%n", "${jndi:ldap://x}", "' OR 1=1 --", "<script>alert(1)</script>",
)  # fmt: skip

HOSTILE_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    st.sampled_from(SLACK_MARKUP + INVALID_IDS + WEIRD_TEXT),
    st.sampled_from([1, 10_000, 300_000]).map(lambda n: "A" * n),  # huge strings
    st.lists(st.one_of(st.text(max_size=10), st.integers(), st.sampled_from(SLACK_MARKUP)), max_size=4),
    st.dictionaries(st.text(max_size=8), st.one_of(st.none(), st.integers(), st.text(max_size=8)), max_size=3),
)
HOSTILE_KEYS = st.one_of(st.text(max_size=12), st.sampled_from(["detail", "id", "extra", "__proto__", "image-tags"]))


def load_samples(*names: str) -> list[dict[str, Any]]:
    files = [EVENTS / name for name in names] if names else sorted(EVENTS.glob("*.json"))
    return [json.loads(path.read_text(encoding="utf-8")) for path in files]


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every place in a JSON document: (key, key, index, ...)."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield (*prefix, key)
            yield from _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield (*prefix, index)
            yield from _paths(value, (*prefix, index))


def _at(node: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        node = node[key]
    return node


@st.composite
def mutated(draw: st.DrawFn, samples: list[dict[str, Any]], whole: bool = True) -> Any:
    """A sample with one to three hostile mutations (or, rarely, something that is not an event at all)."""
    if whole and draw(st.integers(0, 24)) == 0:
        return draw(HOSTILE_VALUES)
    raw = copy.deepcopy(draw(st.sampled_from(samples)))
    for _ in range(draw(st.integers(1, 3))):
        paths = list(_paths(raw))
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent, key = _at(raw, path[:-1]), path[-1]
        operation = draw(st.sampled_from(["drop", "replace", "replace", "replace", "add"]))
        if operation == "drop":
            del parent[key]
        elif operation == "replace":
            parent[key] = draw(HOSTILE_VALUES)
        elif isinstance(parent, dict):
            parent[draw(HOSTILE_KEYS)] = draw(HOSTILE_VALUES)
        else:
            parent.append(draw(HOSTILE_VALUES))
    return raw


def unescaped_markup(text: str) -> list[str]:
    """Slack markup that would act (mention everyone, link somewhere) if it reached Slack as it is."""
    return [m for m in SLACK_MARKUP if m.startswith("<") and m in text]
