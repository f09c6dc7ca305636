"""A worker killed outright (SIGKILL) takes its scheduler children with it (issue 12,
item 10): rq's scheduler for delayed jobs and the cron scheduler used to run on as
orphans, refreshing the scheduler lock for ever."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from uuid import uuid4

from flask import Flask
from redis import Redis
from rq.cron import CronScheduler
from rq.scheduler import RQScheduler

from tests.billing.test_jobs_and_cli import start_worker


def children_of(pid: int) -> dict[int, str]:
    """pid → name of the live processes whose parent is `pid` (from /proc)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        state, ppid = stat[stat.rindex(")") + 2 :].split()[:2]
        if int(ppid) == pid and state != "Z":
            found[int(entry.name)] = name
    return found


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def test_the_scheduler_children_die_with_a_killed_worker(app: Flask) -> None:
    connection = Redis.from_url(app.config["REDIS_URL"])
    queue_name = f"test-{uuid4().hex}"
    lock_key = RQScheduler.get_locking_key(queue_name)
    process = start_worker(queue_name)
    children: dict[int, str] = {}
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            children = children_of(process.pid)
            if len(children) >= 2 and connection.exists(lock_key):
                break
            assert process.poll() is None
            time.sleep(0.2)
        # The cron scheduler and rq's scheduler (and a work horse while a job runs).
        assert len(children) >= 2, children
        assert connection.exists(lock_key)

        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)

        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and any(alive(pid) for pid in children):
            time.sleep(0.2)
        assert not any(alive(pid) for pid in children), children
        assert not connection.exists(lock_key)  # released on the way out
        ours = [
            s
            for s in CronScheduler.all(connection)
            if any(job.queue_name == queue_name for job in s.get_jobs())
        ]
        assert ours == []  # the cron scheduler unregistered too
    finally:
        if process.poll() is None:
            process.kill()
        for pid in children:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
