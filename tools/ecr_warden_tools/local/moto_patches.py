"""Where moto's emulation differs from AWS in a way ecr-warden's rules depend on, align it here, once."""

from __future__ import annotations

from typing import Any

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
    _applied = True
