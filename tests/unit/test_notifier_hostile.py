"""Hostile input to the notifier's entry point (ecr_warden.notify.entry.process), 1,000+ generated cases: the
sample decision event with fields missing, wrong types, huge strings, unicode, invalid digests and ARNs, and Slack
markup (`<!channel>`, `<http://evil.example|click>`, mentions) in every text a message shows.

Each case ends in a typed answer, never an unhandled exception: `rejected` with no write at all (no DynamoDB
claim, no SNS, no Slack, no SQS), or a notification whose Slack text cannot mention anyone or link anywhere but
the AWS console and known advisories, and whose SNS subject is short ASCII. The notifier runs on in-memory fakes
(tests/notify_fakes.py).
"""

from __future__ import annotations

import copy
import json
from typing import Any
from urllib.parse import urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ecr_warden.notify import entry
from ecr_warden.settings import NotifierSettings
from tests.hostile import SLACK_MARKUP, WEIRD_TEXT, load_samples, mutated, unescaped_markup
from tests.notify_fakes import NotifierFakes

EXAMPLES = 1000
[SAMPLE] = load_samples("ecr-warden-decision-quarantined.json")
SETTINGS = NotifierSettings(
    topic_arn="arn:aws:sns:us-east-1:123456789012:decisions",
    notify_state_table_name="notify-state",
    follow_up_queue_url="https://sqs.us-east-1.amazonaws.com/123456789012/follow-ups",
    slack_dead_letter_queue_url="https://sqs.us-east-1.amazonaws.com/123456789012/slack-dlq",
)
ACTIONS = ["quarantined", "archived", "tagged", "released", "retag_blocked", "tag_reused", "now_compliant",
           "updated", "passed", "would_quarantine", "scan_failed", "unscanned", "findings_missing"]  # fmt: skip
MARKUP_TEXT = st.one_of(st.sampled_from(SLACK_MARKUP + WEIRD_TEXT), st.text(max_size=30),
                        st.sampled_from([1, 3000, 40_000]).map(lambda n: "<!channel>" * n))  # fmt: skip


@st.composite
def markup_decisions(draw: st.DrawFn) -> dict[str, Any]:
    """A decision that stays valid, with hostile text wherever a message shows event text."""
    raw = copy.deepcopy(SAMPLE)
    detail = raw["detail"]
    detail["action"] = draw(st.sampled_from(ACTIONS))
    detail["tags"] = draw(st.lists(MARKUP_TEXT, max_size=3))
    detail["reasons"] = draw(st.lists(MARKUP_TEXT, max_size=3))
    detail["rule"] = draw(MARKUP_TEXT)
    finding = detail["top_findings"][0]
    for key in ("id", "package", "installed_version", "fixed_version"):
        finding[key] = draw(MARKUP_TEXT)
    urls = ["https://nvd.nist.gov/vuln/detail/x", "http://evil.example/", "https://evil.example/|<!channel>",
            "javascript:alert(1)", None]  # fmt: skip
    finding["url"] = draw(st.sampled_from(urls))
    detail["decision_id"] = draw(st.uuids()).hex
    return raw


HOSTILE_DECISIONS = st.one_of(mutated([SAMPLE]), mutated([SAMPLE]), markup_decisions())


def mrkdwn_texts(node: Any) -> list[str]:
    """Every text Slack parses as mrkdwn (mentions and links act there); plain_text objects show text as it is."""
    if isinstance(node, dict):
        own = [node["text"]] if node.get("type") == "mrkdwn" and isinstance(node.get("text"), str) else []
        return own + [t for key, value in node.items() if key != "text" or isinstance(value, dict | list)
                      for t in mrkdwn_texts(value)]  # fmt: skip
    if isinstance(node, list):
        return [t for value in node for t in mrkdwn_texts(value)]
    return []


def check_answer(raw: Any, fakes: NotifierFakes) -> dict[str, Any]:
    try:
        result = entry.process(raw, None, SETTINGS, lambda settings: fakes.notifier())
    except Exception as error:  # the point of the suite
        raise AssertionError(f"unhandled {type(error).__name__}: {error}") from error
    if result.get("status") == "rejected":
        assert sum(fakes.writes.values()) == 0, f"rejected input, yet writes: {dict(fakes.writes)}"
        assert len(result["error"]) < 2000, "an answer that echoes the input"
        return result
    assert result.get("status") == "ok", result
    assert len(fakes.sns.published) <= 1, "two SNS messages for one decision"
    assert len(fakes.slack.posted) <= 1, "two Slack messages for one decision"
    for subject, _document, attributes in fakes.sns.published:
        assert subject.isascii(), subject
        assert len(subject) < 100, subject
        assert all(isinstance(a["StringValue"], str) and a["StringValue"] for a in attributes.values()), attributes
    for _route, message in fakes.slack.posted:
        for text in [message["text"], *mrkdwn_texts(message["blocks"])]:
            assert not unescaped_markup(text), f"Slack markup reached the channel: {text[:200]}"
        buttons = [e.get("url") for b in message["blocks"] for e in b.get("elements") or [] if e.get("url")]
        for url in buttons:
            parts = urlsplit(url)
            assert parts.scheme == "https", url
            assert parts.hostname in ("console.aws.amazon.com", f"{raw['detail']['region']}.console.aws.amazon.com")
        assert len(message["blocks"]) <= 50
    return result


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                     HealthCheck.data_too_large])  # fmt: skip
@given(raw=HOSTILE_DECISIONS)
def test_hostile_decisions_get_a_typed_answer_and_never_reach_slack_as_markup(raw: Any) -> None:
    check_answer(raw, NotifierFakes())


def test_the_sample_decision_is_notified_so_valid_mutations_reach_slack() -> None:
    fakes = NotifierFakes()
    assert check_answer(copy.deepcopy(SAMPLE), fakes)["result"] == "notified"
    assert len(fakes.slack.posted) == 1
    assert len(fakes.sns.published) == 1


# -- the test of the tests ---------------------------------------------------------------------------------------


def test_the_checker_catches_unescaped_markup(monkeypatch: pytest.MonkeyPatch) -> None:
    """Break "event text is not trusted": mrkdwn escaping turned off."""
    from ecr_warden.notify import message

    monkeypatch.setattr(message, "mrkdwn_escape", str)
    raw = copy.deepcopy(SAMPLE)
    raw["detail"]["tags"] = ["<!channel>"]
    raw["detail"]["reasons"] = ["<http://evil.example|click>"]
    with pytest.raises(AssertionError, match="markup reached the channel"):
        check_answer(raw, NotifierFakes())


def test_the_checker_catches_a_write_on_rejected_input(monkeypatch: pytest.MonkeyPatch) -> None:
    from ecr_warden import runtime

    def reject_after_claiming(raw: Any, error: Any, settings: Any, dead_letter: Any = None) -> dict[str, Any]:
        fakes.state.claim("image", "claimed before validating", __import__("datetime").datetime.now())
        return runtime.reject(raw, error, settings, dead_letter)

    monkeypatch.setattr(entry, "reject", reject_after_claiming)
    fakes = NotifierFakes()
    with pytest.raises(AssertionError, match="writes"):
        check_answer(json.loads('{"detail": {}}'), fakes)
