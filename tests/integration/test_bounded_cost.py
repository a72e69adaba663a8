"""A decision's AWS calls do not grow with the repository: the index of an unmapped platform image is looked
for in one page of tagged images (ECR's largest) and one BatchGetImage, however many images there are."""

from __future__ import annotations

from ecr_warden_tools.local.images import OCI_INDEX, OCI_MANIFEST, image_index, image_manifest
from tests.integration import events
from tests.integration.conftest import REPOSITORY, Env
from tests.integration.test_scan_gate import CRITICAL

# 11 until 0.2; +1 DescribeImages (the quarantine re-reads the tags after its write-ahead: a tag pushed meanwhile)
# and +1 write (the announcement is owed from the write-ahead, and cleared once sent: a crash can't lose it)
# and +1 Query (exemptions the admin function stored, read when a verdict would block)
MAX_CALLS = 14


def _fill(aws: Env, count: int) -> None:
    for i in range(count):
        aws.push(f"filler-{i}", f"filler-{i}")


def _unmapped_child(aws: Env, fillers: int) -> tuple[str, str]:
    aws.create_repository()
    _fill(aws, fillers)
    child = aws.push(None, "amd64", media_type=OCI_MANIFEST, manifest=image_manifest("amd64", OCI_MANIFEST))
    index = aws.push("v5", "index", media_type=OCI_INDEX, manifest=image_index({"linux/amd64": child}))
    aws.enhanced.findings[(REPOSITORY, child)] = list(CRITICAL)
    aws.counter.calls.clear()
    aws.enhanced.calls = 0
    return child, index


def test_an_unmapped_child_finds_its_index_in_one_page_and_blocks_it(aws: Env) -> None:
    child, index = _unmapped_child(aws, 900)  # every tagged image fits one page
    # the index's push event was not handled yet: the scan of its platform image arrives first
    outcome = aws.gate().handle(events.inspector_scan(child, [], {"CRITICAL": 1, "TOTAL": 2}))
    calls, total = dict(aws.counter.calls), aws.counter.total + aws.enhanced.calls

    assert outcome.action == "quarantined"
    assert aws.tags(index) == ["quarantined-" + index[7:19]]
    # the child, one page of tagged images, and the index again right before its tags go (a tag pushed meanwhile)
    assert calls["ecr:DescribeImages"] == 3, calls
    assert calls["ecr:BatchGetImage"] == 1, calls  # the candidate indexes, whose manifests then serve the block
    assert total <= MAX_CALLS, calls


def test_beyond_one_page_the_cost_stays_bounded_and_the_outcome_says_what_it_did(aws: Env) -> None:
    child, index = _unmapped_child(aws, 1_200)  # ECR's page order is unspecified: the index may not be on it
    outcome = aws.gate().handle(events.inspector_scan(child, [], {"CRITICAL": 1, "TOTAL": 2}))
    total = aws.counter.total + aws.enhanced.calls

    assert total <= MAX_CALLS, aws.counter.calls
    assert aws.counter.calls["ecr:DescribeImages"] <= 3
    if aws.tags(index) == ["v5"]:  # not found on the page: the child is blocked and the outcome says why
        assert outcome.reason.endswith("an index that does is blocked as soon as its push is mapped")
        assert aws.gate().handle(events.push(index, "v5", media_type=OCI_INDEX)).action == "quarantined"
    assert aws.tags(index) == ["quarantined-" + index[7:19]]


def test_the_lookup_asks_for_ecr_largest_page_of_tagged_images(aws: Env) -> None:
    aws.create_repository()
    child = aws.push(None, "arm64", media_type=OCI_MANIFEST, manifest=image_manifest("arm64", OCI_MANIFEST))
    requests: list[dict[str, object]] = []
    aws.ecr.meta.events.register(
        "before-parameter-build.ecr.DescribeImages", lambda params, **_: requests.append(dict(params))
    )
    aws.gate().registry.indexes_containing(REPOSITORY, child, None)
    assert requests == [{"repositoryName": REPOSITORY, "filter": {"tagStatus": "TAGGED"}, "maxResults": 1000}]
