"""How a repository-settings decision reads in Slack and SNS: the repository, each change before -> after, the gaps
left, a console link to the repository; event text escaped; no image commands."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from ecr_warden.contracts.decision import Action, DecisionDetail, DecisionEvent, SettingChange
from ecr_warden.notify import message
from tests.conftest import load_event

CHANGES = [
    SettingChange(setting="tag_mutability", before="MUTABLE", after="IMMUTABLE"),
    SettingChange(setting="tags", before="Project=-", after="Project=<!channel>"),
]


def decision(action: Action = Action.SETTINGS_ENFORCED, **fields: object) -> DecisionDetail:
    base: dict[str, object] = {
        "schema_version": "1.2",
        "decision_id": "d-1",
        "time": datetime(2026, 1, 1, tzinfo=UTC),
        "account": "123456789012",
        "region": "us-east-1",
        "environment": "dev",
        "mode": "enforce",
        "repository": "ses-base/scratchpad",
        "subject": "repository",
        "verdict": "NONCOMPLIANT",
        "action": action,
        "status": action.value.upper(),
        "rule": "default",
        "settings_changes": CHANGES,
        "reasons": ["encryption is AES256 without a customer-managed KMS key"],
        "creation_path": "person_or_pipeline",
        "trigger": "CreateRepository",
    }
    return DecisionDetail.model_validate(base | fields)


@pytest.mark.parametrize("action", [Action.SETTINGS_ENFORCED, Action.SETTINGS_REPORTED, Action.WOULD_ENFORCE_SETTINGS])
def test_settings_decisions_render(action: Action) -> None:
    detail = decision(action)
    slack = message.slack_message(detail)
    text = json.dumps(slack, ensure_ascii=False)
    assert "ses-base/scratchpad" in slack["blocks"][0]["text"]["text"]
    assert "MUTABLE → IMMUTABLE" in text
    assert "KMS" in text
    assert "&lt;!channel&gt;" in text
    assert "<!channel>" not in text
    assert "ecr-warden release" not in text
    assert message.commands(detail) == {}
    button = slack["blocks"][-2]["elements"][0]["url"]
    assert button == (
        "https://us-east-1.console.aws.amazon.com/ecr/repositories/private/123456789012/ses-base/scratchpad"
        "?region=us-east-1"
    )
    subject = message.sns_subject(detail)
    assert subject.startswith("[ecr-warden] ")
    assert "ses-base/scratchpad" in subject
    assert len(subject) < 100
    document = message.sns_document(detail)
    assert document["decision"]["settings_changes"][0]["after"] == "IMMUTABLE"
    assert message.sns_attributes(detail)["action"]["StringValue"] == action.value


def test_image_decisions_still_need_their_digest() -> None:
    with pytest.raises(ValueError, match="digest"):
        decision(subject="image")


def test_a_1_1_image_decision_still_parses() -> None:
    raw = load_event("ecr-warden-decision-quarantined.json")
    parsed = DecisionEvent.model_validate(raw)
    assert parsed.detail.subject == "image"
    assert parsed.detail.digest
