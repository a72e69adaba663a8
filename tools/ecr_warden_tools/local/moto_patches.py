"""Where moto's emulation differs from AWS in a way ecr-warden's rules depend on, align it here, once."""

from __future__ import annotations

import copy
from typing import Any

from ecr_warden_tools.local import ecr_extras

_applied = False


def _flatten_like_eventbridge(node: Any, prefix: str = "", result: dict[str, Any] | None = None) -> dict[str, Any]:
    """Flatten an event the way EventBridge matches it: arrays of objects contribute every element's leaves.

    moto only flattens nested objects, so a pattern such as {"detail": {"resources": {"type": [...]}}} (the
    documented way to select ECR findings in `Inspector2 Finding` events) never matches there.
    """
    if result is None:
        result = {}
    items: list[tuple[str, Any]]
    if isinstance(node, dict):
        items = list(node.items())
    else:
        return result
    for key, value in items:
        path = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict) and value:
            _flatten_like_eventbridge(value, path, result)
        elif isinstance(value, list) and any(isinstance(element, dict) for element in value):
            for element in value:
                if isinstance(element, dict):
                    leaves = _flatten_like_eventbridge(element, path, {})
                    for leaf, leaf_value in leaves.items():
                        bucket = result.setdefault(leaf, [])
                        bucket.extend(leaf_value if isinstance(leaf_value, list) else [leaf_value])
        else:
            result[path] = value
    return result


ECR_MAX_RESULTS = 1000  # ECR's largest page for DescribeImages and ListImages
ECR_DEFAULT_RESULTS = 100  # and its page when maxResults is not given


def _page(items: list[Any], max_results: Any, next_token: Any) -> tuple[list[Any], str | None]:
    size = min(int(max_results or ECR_DEFAULT_RESULTS), ECR_MAX_RESULTS)
    start = int(next_token or 0)
    end = start + size
    return items[start:end], (str(end) if end < len(items) else None)


def _page_ecr_listings() -> None:
    """moto returns every image at once and ignores DescribeImages' tagStatus filter; ECR pages (100 by default,
    1,000 at most) and filters. Costs that grow with a repository only show when the local stack pages too."""
    from moto.core.responses import ActionResult
    from moto.ecr.responses import ECRResponse

    original_describe = ECRResponse.describe_images
    original_list = ECRResponse.list_images

    def describe_images(self: Any) -> Any:
        if self._get_param("imageIds"):
            return original_describe(self)
        images = sorted(
            self.ecr_backend.describe_images(self._get_param("repositoryName"), self._get_param("registryId")),
            key=lambda image: image.image_digest,
        )
        status = (self._get_param("filter") or {}).get("tagStatus", "ANY")
        if status != "ANY":
            images = [i for i in images if bool(i.image_tags) is (status == "TAGGED")]
        page, token = _page(images, self._get_param("maxResults"), self._get_param("nextToken"))
        details = []
        for image in page:
            detail = copy.copy(image)
            if not detail.image_tags:
                del detail.image_tags
            details.append(detail)
        return ActionResult({"imageDetails": details, **({"nextToken": token} if token else {})})

    def list_images(self: Any) -> Any:
        listed: Any = original_list(self).result
        ids = sorted(listed["imageIds"], key=lambda i: (i["imageDigest"], i.get("imageTag") or ""))
        page, token = _page(ids, self._get_param("maxResults"), self._get_param("nextToken"))
        return ActionResult({"imageIds": page, **({"nextToken": token} if token else {})})

    ECRResponse.describe_images = describe_images  # type: ignore[method-assign]
    ECRResponse.list_images = list_images  # type: ignore[method-assign]


def _test_event_pattern() -> None:
    """EventBridge TestEventPattern (moto answers nothing): `ecr-warden send` asks it which rules an event meets."""
    import json

    from moto.events.models import EventPattern
    from moto.events.responses import EventsHandler

    def test_event_pattern(self: Any) -> Any:
        event = json.loads(self._get_param("Event"))
        pattern = EventPattern.load(self._get_param("EventPattern"))
        return json.dumps({"Result": bool(pattern.matches_event(event))}), self.response_headers

    EventsHandler.test_event_pattern = test_event_pattern  # type: ignore[method-assign]


def _schedule_rules_match_no_event() -> None:
    """An EventBridge rule with only a schedule expression never matches events; moto matches a rule without a
    pattern to every event, so a SAM `Schedule` event's rule would receive (and fail on) every event put."""
    from moto.events.models import Rule

    original = Rule.send_to_targets

    def send_to_targets(self: Any, original_event: Any, transform_input: bool = True) -> None:
        if self.scheduled_expression and not self.event_pattern.get_pattern():
            return
        original(self, original_event, transform_input)

    Rule.send_to_targets = send_to_targets  # type: ignore[method-assign]


def apply() -> None:
    global _applied  # noqa: PLW0603 - idempotent one-time patch of a third-party class
    if _applied:
        return
    from moto.events.models import EventPattern
    from moto.events.utils import EventTemplateParser

    EventPattern._flatten_dict = staticmethod(_flatten_like_eventbridge)  # type: ignore[method-assign]
    # moto's default target input drops "account"; EventBridge delivers the whole event.
    EventTemplateParser.DEFAULT_EVENT_INPUT_TEMPLATE = (
        '{"version": "0", "id": "<id>", "detail-type": "<detail-type>", "source": "<source>", '
        '"account": "<account>", "time": <time>, "region": "<region>", "resources": <resources>, '
        '"detail": <detail>}'
    )
    _page_ecr_listings()
    ecr_extras.apply()
    _test_event_pattern()
    _schedule_rules_match_no_event()
    _applied = True
