"""A worker killed with SIGKILL leaves a work directory and maybe an ffmpeg still
writing into it; the other workers on the machine kill that orphan and delete the files."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from reelforge.queue.worker import reap_dead_workers


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_dead_workers_orphans_are_killed_and_files_removed(tmp_path):
    root = tmp_path / "work"
    host = socket.gethostname()
    dead = root / f"{host}-{_dead_pid()}"
    out = dead / "job_1-1" / "out"
    out.mkdir(parents=True)
    (out / "video.mp4").write_bytes(b"half an mp4")
    # an "ffmpeg" orphan: its own session, its output path in the dead worker's directory
    orphan = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)",
                               str(out / "video.mp4")], start_new_session=True)
    deadline = time.time() + 10
    while b"video.mp4" not in Path(f"/proc/{orphan.pid}/cmdline").read_bytes():
        assert time.time() < deadline  # wait for its exec
        time.sleep(0.01)
    alive = root / f"{host}-{os.getpid()}" / "job_2-1"
    alive.mkdir(parents=True)
    other_host = root / "elsewhere-1"
    other_host.mkdir()
    try:
        assert reap_dead_workers(root) == 1
        assert orphan.wait(5) == -9
        assert not dead.exists()
        assert alive.exists() and other_host.exists()  # live workers and other machines
        assert reap_dead_workers(root) == 0
    finally:
        if orphan.poll() is None:
            orphan.kill()


def test_a_zombie_worker_counts_as_dead(tmp_path):
    zombie = subprocess.Popen(["true"])
    deadline = time.time() + 5
    while time.time() < deadline:  # exited but not reaped yet
        state = open(f"/proc/{zombie.pid}/stat").read().rsplit(")", 1)[1].split()[0]
        if state == "Z":
            break
        time.sleep(0.01)
    work = tmp_path / "work" / f"{socket.gethostname()}-{zombie.pid}"
    work.mkdir(parents=True)
    try:
        assert reap_dead_workers(tmp_path / "work") == 1
    finally:
        zombie.wait()
