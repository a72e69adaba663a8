"""Shared test settings: fake credentials so nothing can reach a real AWS account, and sample-event helpers."""

from __future__ import annotations

import importlib
import json
import os
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
EVENTS = ROOT / "events"
TEMPLATE = ROOT / "template.yaml"


def adapter_iam(adapters: tuple[type | str, ...]) -> frozenset[str]:
    """The IAM actions a function's adapters declare (their modules' IAM_ACTIONS): classes, or module names."""
    modules = (a if isinstance(a, str) else a.__module__ for a in adapters)
    return frozenset().union(*(importlib.import_module(m).IAM_ACTIONS for m in modules))


for key in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
    os.environ.pop(key, None)
os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "POWERTOOLS_METRICS_NAMESPACE": "ecr-warden-test",
        "POWERTOOLS_SERVICE_NAME": "scan-gate",
        "POWERTOOLS_LOG_LEVEL": "INFO",
    }
)


def load_event(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((EVENTS / name).read_text(encoding="utf-8"))
    return data


@pytest.fixture
def event() -> Any:
    return load_event
