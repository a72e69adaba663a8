"""The shared event builders (tests/events.py), under the name the integration tests have always used."""

from tests.events import basic_scan, finding, inspector_scan, push

__all__ = ["basic_scan", "finding", "inspector_scan", "push"]
