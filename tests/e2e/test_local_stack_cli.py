"""`ecr-warden local` and `ecr-warden send` as a newcomer meets them: a mistake is one line that says what to do,
an idle stack costs next to nothing, and the project's own sample events go where something consumes them."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import EVENTS, ROOT
from tests.e2e.conftest import RunningStack, free_port, run_cli

pytestmark = pytest.mark.e2e


def _one_line_error(*args: str) -> str:
    result = run_cli(*args, check=False)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.strip().count("\n") == 0, result.stderr
    assert "Traceback" not in result.stderr
    return result.stderr


@pytest.mark.parametrize(
    ("parameter", "expected"),
    [
        ("Mode=Audit", "--parameter Mode=Audit: must be one of enforce, audit (values are case-sensitive: audit)"),
        ("Foo=bar", "--parameter Foo: the template has no such parameter (it has: "),
        ("EnvironmentName=Prod_1", "--parameter EnvironmentName=Prod_1: must match ^[a-z][a-z0-9-]{1,20}$"),
        ("GateReservedConcurrency=5000", "--parameter GateReservedConcurrency=5000: must be between 0 and 1000"),
        ("GateReservedConcurrency=ten", "--parameter GateReservedConcurrency=ten: must be a number"),
        ("Mode", "--parameter 'Mode': expected KEY=VALUE"),
    ],
)
def test_a_bad_parameter_is_refused_before_anything_starts(parameter: str, expected: str) -> None:
    port = free_port()
    assert expected in _one_line_error("local", "--port", str(port), "--parameter", parameter)
    with socket.socket() as sock:  # nothing was left holding the port
        sock.bind(("127.0.0.1", port))


def test_a_busy_port_is_one_line_saying_what_to_do() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        port = holder.getsockname()[1]
        error = _one_line_error("local", "--port", str(port))
    assert f"port {port} on 127.0.0.1 is busy" in error
    assert "--port" in error


def test_ctrl_c_while_starting_exits_130_without_a_traceback() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "ecr_warden_tools.cli", "local", "--port", str(free_port())],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    time.sleep(1.5)  # importing moto or provisioning: the stack is not ready yet
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=60)
    assert "ready on" not in stdout, "the stack was ready before Ctrl-C: this test needs a slower start"
    assert process.returncode == 130, f"exit {process.returncode}\n{stdout}\n{stderr}"
    assert "Traceback" not in stderr, stderr
    assert stderr.strip().count("\n") == 0, stderr


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_an_idle_stack_costs_next_to_no_cpu(stack: RunningStack) -> None:
    time.sleep(3)  # let the delivery loop back off after start-up
    before = _cpu_seconds(stack.process.pid)
    time.sleep(4)
    used = _cpu_seconds(stack.process.pid) - before
    assert used < 0.2, f"an idle stack used {used:.2f} s of CPU in 4 s"


def test_send_delivers_a_decision_event_to_the_decision_bus(stack: RunningStack) -> None:
    sample = EVENTS / "ecr-warden-decision-quarantined.json"
    result = stack.cli("send", str(sample), "--endpoint-url", stack.endpoint_url)
    assert f"sent {sample} to bus ecr-warden-dev" in result.stdout
    assert "warning" not in result.stderr
    stack.wait_for(
        lambda: "matched rule ecr-warden-dev-notifier-Decisions -> NotifierFunction" in stack.output(),
        what="the notifier's rule to match",
    )


def test_send_warns_when_no_rule_matches(stack: RunningStack) -> None:
    sample = EVENTS / "ecr-image-action-delete.json"
    result = stack.cli("send", str(sample), "--endpoint-url", stack.endpoint_url)
    assert (
        f"warning: {sample}: no rule on bus default matches this event (source 'aws.ecr', detail-type "
        "'ECR Image Action'): nothing will consume it"
    ) in result.stderr
    assert f"sent {sample} to bus default" in result.stdout


def test_push_puts_a_synthetic_image_and_the_same_seed_retags_it(stack: RunningStack) -> None:
    stack.client("ecr").create_repository(repositoryName="e2e/pushed")
    first = stack.cli("push", "--repository", "e2e/pushed", "--tag", "v1", "--endpoint-url", stack.endpoint_url)
    digest = first.stdout.split(" as ", 1)[1].split()[0]
    seed = first.stdout.split("(seed ", 1)[1].rstrip(")\n").strip("'")
    stack.cli(
        "push", "--repository", "e2e/pushed", "--tag", "v1-again", "--seed", seed, "--endpoint-url", stack.endpoint_url
    )
    details = stack.client("ecr").describe_images(repositoryName="e2e/pushed")["imageDetails"]
    assert [(d["imageDigest"], sorted(d["imageTags"])) for d in details] == [(digest, ["v1", "v1-again"])]
    stack.wait_for(lambda: "'ECR Image Action' matched rule" in stack.output(), what="the PUSH event")


def test_push_to_a_missing_repository_is_one_line(stack: RunningStack) -> None:
    result = stack.cli(
        "push", "--repository", "e2e/none", "--tag", "v1", "--endpoint-url", stack.endpoint_url, check=False
    )
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "ecr-warden: error: push e2e/none:v1: RepositoryNotFoundException: The repository with name 'e2e/none' "
        "does not exist in the registry with id '123456789012'"
    )
