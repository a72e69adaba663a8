"""Estimated AWS cost of 1,000,000 events through ecr-warden, from the AWS calls measured per decision.

The workload and the prices are stated below; change them to match an account. Prices: us-east-1, on-demand, as
published in November 2026 (Lambda arm64, DynamoDB on-demand, EventBridge custom events, SQS standard, CloudWatch
Logs ingestion, X-Ray traces); free tiers are left out. ECR and Inspector API calls cost nothing themselves;
Inspector's own scanning price is the same with or without ecr-warden and is not counted.
"""

from __future__ import annotations

from dataclasses import dataclass

PRICES = {
    "lambda_request": 0.20 / 1_000_000,
    "lambda_gb_second_arm64": 0.0000133334,
    "dynamodb_write_unit": 0.625 / 1_000_000,
    "dynamodb_read_unit": 0.125 / 1_000_000,
    "eventbridge_custom_event": 1.00 / 1_000_000,
    "sqs_request": 0.40 / 1_000_000,
    "logs_ingested_gb": 0.50,
    "xray_trace": 5.00 / 1_000_000,
}
MEMORY_GB = 0.5  # the template's MemorySize (512 MB)
MS_PER_AWS_CALL = 15.0  # a same-region AWS API call from Lambda, typical latency
MS_COMPUTE = 5.0  # the decision itself, once warm
LOG_BYTES_PER_INVOCATION = 1_500  # the decision line plus Lambda's START/END/REPORT lines
WRITE_UNITS_PER_WRITE = 2  # an audit record with its history is 1-2 KB


@dataclass(frozen=True)
class Scenario:
    """One kind of event: its share of the workload and the AWS calls one takes (measured by run.py)."""

    name: str
    share: float
    ddb_reads: int
    ddb_writes: int
    other_calls: int  # ECR, Inspector (free), SQS
    announces: bool  # a decision event on the bus, and so a notifier invocation


def workload(critical_calls: dict[str, int], clean_calls: dict[str, int]) -> list[Scenario]:
    """A registry where 40 % of events are pushes, 40 % scan results (5 % of them CRITICAL) and 20 % continuous-scan
    findings below the thresholds."""

    def split(calls: dict[str, int]) -> tuple[int, int, int]:
        reads = sum(n for call, n in calls.items() if call in ("dynamodb:GetItem", "dynamodb:Query"))
        writes = sum(n for call, n in calls.items() if call.startswith("dynamodb:") and call != "dynamodb:GetItem")
        other = sum(n for call, n in calls.items() if not call.startswith(("dynamodb:", "events:")))
        return reads, writes, other

    return [
        Scenario("push (tagged)", 0.40, 1, 1, 1, False),  # record read, tag claim check, delayed-check message
        Scenario("scan result, clean", 0.38, *split(clean_calls), True),
        Scenario("scan result, CRITICAL", 0.02, *split(critical_calls), True),
        Scenario("finding below the thresholds", 0.20, 0, 0, 0, False),
    ]


def estimate(scenarios: list[Scenario], events: int = 1_000_000) -> dict[str, float]:
    cost: dict[str, float] = dict.fromkeys(
        ("Lambda", "DynamoDB", "EventBridge", "SQS", "CloudWatch Logs", "X-Ray"), 0.0
    )
    for s in scenarios:
        n = events * s.share
        calls = s.ddb_reads + s.ddb_writes + s.other_calls + int(s.announces)
        invocations = n * (2 if s.announces else 1)  # the notifier runs for every decision event
        seconds = n * (MS_COMPUTE + MS_PER_AWS_CALL * calls) / 1000 + (invocations - n) * 0.02
        cost["Lambda"] += (
            invocations * PRICES["lambda_request"] + seconds * MEMORY_GB * PRICES["lambda_gb_second_arm64"]
        )
        cost["DynamoDB"] += n * (
            s.ddb_reads * PRICES["dynamodb_read_unit"]
            + s.ddb_writes * WRITE_UNITS_PER_WRITE * PRICES["dynamodb_write_unit"]
        )
        cost["EventBridge"] += n * int(s.announces) * PRICES["eventbridge_custom_event"]
        cost["SQS"] += n * (3 if s.name.startswith("push") else 0) * PRICES["sqs_request"]  # send, receive, delete
        cost["CloudWatch Logs"] += invocations * LOG_BYTES_PER_INVOCATION / 1e9 * PRICES["logs_ingested_gb"]
        cost["X-Ray"] += invocations * PRICES["xray_trace"]  # Tracing: Active; every invocation sampled at this rate
    return cost


def print_estimate(cost: dict[str, float], events: int = 1_000_000) -> float:
    total = sum(cost.values())
    print(f"  per {events:,} events (40 % pushes, 38 % clean scans, 2 % CRITICAL scans, 20 % minor findings):")
    for service, dollars in cost.items():
        print(f"    {service:<16} ${dollars:8.2f}")
    print(f"    {'total':<16} ${total:8.2f}   (prices: us-east-1, November 2026; see benchmarks/cost.py)")
    return total


# The AWS calls of one decision, as measured by run.py (a CRITICAL quarantine; a clean scan result)
MEASURED_CRITICAL = {
    "dynamodb:GetItem": 1,
    "ecr:DescribeImages": 2,
    "ecr:BatchGetImage": 1,
    "dynamodb:TransactWriteItems": 1,
    "ecr:PutImage": 1,
    "ecr:BatchDeleteImage": 1,
    "events:PutEvents": 1,
    "dynamodb:PutItem": 1,
    "inspector2:ListFindings": 1,
}
MEASURED_CLEAN = {"dynamodb:UpdateItem": 1, "events:PutEvents": 1}


def monthly_events(pushes_per_day: int, days: int = 30) -> int:
    """Events a month for a registry with this many pushes a day, in the workload's mix (pushes are 40 %)."""
    push_share = next(s.share for s in workload(MEASURED_CRITICAL, MEASURED_CLEAN) if s.name.startswith("push"))
    return round(pushes_per_day * days / push_share)


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pushes-per-day", type=int, help="estimate a month of this workload instead of 1M events")
    options = parser.parse_args()
    events = monthly_events(options.pushes_per_day) if options.pushes_per_day else 1_000_000
    if options.pushes_per_day:
        print(f"  a month (30 days) of {options.pushes_per_day:,} pushes a day:")
    print_estimate(estimate(workload(MEASURED_CRITICAL, MEASURED_CLEAN), events), events)
