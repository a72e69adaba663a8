"""A platform image listed by many indexes over its history (reproducible builds make a new index over the same
image at every build, and CI moves `latest` to the newest): a CRITICAL finding blocks the indexes that still deploy
something, not every index the image was ever in."""

from __future__ import annotations

import json

from tests.events import CRITICAL, inspector_scan, push
from tests.fakes import OCI_INDEX, REPOSITORY, Fakes, image_index

BUILDS = 20


def _history(fakes: Fakes) -> tuple[str, list[str]]:
    fakes.registry.create_repository(immutable=False)
    child = fakes.registry.push_platform("amd64")
    indexes = []
    for build in range(BUILDS):
        body = json.loads(image_index({"linux/amd64": child}))
        body["annotations"] = {"org.opencontainers.image.created": f"build-{build}"}  # a new index, same image
        index = fakes.registry.push("latest", manifest=json.dumps(body), media_type=OCI_INDEX)
        fakes.gate().handle(push(index, "latest", media_type=OCI_INDEX))
        indexes.append(index)
    return child, indexes


def test_only_the_indexes_that_still_deploy_something_are_blocked() -> None:
    fakes = Fakes()
    child, indexes = _history(fakes)
    fakes.enhanced.set(child, list(CRITICAL))
    fakes.reset_calls()

    outcome = fakes.gate().handle(inspector_scan(child, [], {"CRITICAL": 1}))
    calls = sum(port.total_calls for port in (fakes.registry, fakes.enhanced, fakes.store, fakes.announcer))
    saves = fakes.store.calls["save"]

    assert outcome.action == "quarantined"
    assert fakes.registry.tagged("latest") is None  # the deployable index lost its tag
    newest = fakes.store.require(indexes[-1])
    assert newest.status == "QUARANTINED"
    older = [fakes.store.get(REPOSITORY, index) for index in indexes[:-1]]
    assert all(record is None or record.status != "QUARANTINED" for record in older)  # untagged: left alone
    assert saves <= 3  # the newest index's decision (write-ahead, then done) and the image's own record
    assert calls <= BUILDS + 15  # one read per recorded index, then one decision (was about 9 calls per index)
