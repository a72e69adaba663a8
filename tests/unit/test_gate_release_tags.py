"""A release restores the tags the image had when it was blocked, not tags an earlier event named."""

from __future__ import annotations

from ecr_warden.actions import find
from tests.events import CRITICAL, inspector_scan
from tests.fakes import REPOSITORY, Fakes

MEDIUM_ONLY = {"rules": [{"name": "r", "block_at": "CRITICAL", "tag_at": "HIGH"}]}


def test_tags_the_image_no_longer_had_when_it_was_quarantined_are_not_restored() -> None:
    import json

    from ecr_warden.policy.load import parse_policy

    policy = parse_policy(json.dumps(MEDIUM_ONLY))
    fakes = Fakes()
    fakes.registry.create_repository(immutable=False)
    digest = fakes.registry.push("old", "bad")
    fakes.enhanced.set(digest, [CRITICAL[1]])  # HIGH: flagged, tags recorded
    assert fakes.gate(policy).handle(inspector_scan(digest, ["old"], {"HIGH": 1, "CRITICAL": 0})).action == "tagged"
    fakes.registry.push("new", "bad")  # the image is re-tagged ...
    fakes.registry.remove_tags(REPOSITORY, ["old"])  # ... and loses `old` (moved to another build, say)
    fakes.enhanced.set(digest, list(CRITICAL))
    outcome = fakes.gate(policy).handle(inspector_scan(digest, ["old", "new"], {"CRITICAL": 1, "HIGH": 1}))
    assert outcome.action == "quarantined"
    assert fakes.store.require(digest).original_tags == ["new"]

    request = {"repository": REPOSITORY, "digest": digest, "reason": "accepted", "by": "alice"}
    released = find("release").invoke(request, fakes.gate(policy).actor)
    assert released.action == "released"
    assert "old" not in fakes.registry.tags(digest)
    assert "new" in fakes.registry.tags(digest)
