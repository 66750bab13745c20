"""Issue 13, item 13: `lab down` ends only the lab's own service, by the PID (and start time) `lab up`
recorded; a process that merely names the lab's plan file on its command line is left alone, and so
is a recorded PID that now belongs to another process."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from scanner.lab import manager

pytestmark = pytest.mark.timeout(60)

SLEEPER = "import sys, time; time.sleep(60)"


@pytest.fixture
def state_root(tmp_path, monkeypatch):
    monkeypatch.setenv("CAMSWEEP_LAB_STATE_DIR", str(tmp_path / "labs"))
    return tmp_path / "labs"


def _spawn(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", SLEEPER, *args])


def _fake_lab(prefix: str, service: subprocess.Popen | None, start: int | None) -> None:
    sdir = manager.state_dir(prefix)
    sdir.mkdir(parents=True)
    (sdir / "plan.json").write_text("{}")
    state = {"prefix": prefix, "mode": "loopback", "phase": "up", "service_pid": service.pid if service else None}
    if start is not None:
        state["service_start"] = start
    (sdir / "state.json").write_text(json.dumps(state))


def _gone(p: subprocess.Popen, timeout: float = 10) -> bool:
    try:
        p.wait(timeout=timeout)
        return True
    except subprocess.TimeoutExpired:
        return False


def test_down_stops_the_recorded_service_and_nothing_that_names_the_plan(state_root):
    prefix = "hp2tpid"
    plan = str(state_root / prefix / "plan.json")
    service = _spawn("--plan", plan)
    bystander = _spawn(plan)  # an editor, a `tail`, another tool: it names the plan file too
    try:
        time.sleep(0.2)
        _fake_lab(prefix, service, manager._start_time(service.pid))
        report = manager.down(prefix)
        assert report.pids_stopped == [service.pid]
        assert _gone(service)
        assert bystander.poll() is None, "a process that was not the lab's was signalled"
    finally:
        for p in (service, bystander):
            if p.poll() is None:
                p.kill()
                p.wait()


def test_down_leaves_a_reused_pid_alone(state_root):
    other = _spawn()
    try:
        time.sleep(0.2)
        # the state names this PID, but with another start time: the service exited and the PID was reused
        _fake_lab("hp2tre", other, (manager._start_time(other.pid) or 0) + 12345)
        report = manager.down("hp2tre")
        assert report.pids_stopped == []
        assert other.poll() is None
    finally:
        other.kill()
        other.wait()
