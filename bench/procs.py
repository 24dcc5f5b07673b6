"""The processes a bench run starts (gunicorn, a Celery worker, writers), each stopped on the way out.

Every child gets a session of its own: a Ctrl-C in the terminal reaches the bench only, which then
stops each child's whole process group (gunicorn's and Celery's workers included) by its id.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Callable
from pathlib import Path

from devtools.net import NotReady, free_port, wait_for

BASE_DIR = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
LOG_DIR = BASE_DIR / "var" / "bench"


def wait_started(process: subprocess.Popen, check: Callable[[], bool], what: str, timeout: float) -> None:
    """Wait until ``check`` passes, failing at once (not after ``timeout``) if the process exits first."""
    try:
        wait_for(lambda: check() or process.poll() is not None, timeout, what=what)
    except NotReady as exc:
        raise NotReady(f"{exc} (see {LOG_DIR})") from None
    if process.poll() is not None:
        raise RuntimeError(f"{what}: the process exited with {process.returncode} (see {LOG_DIR})")


class Processes:
    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.running: list[tuple[str, subprocess.Popen]] = []
        LOG_DIR.mkdir(parents=True, exist_ok=True)

    def start(self, name: str, command: list[str], **kwargs) -> subprocess.Popen:
        """``env`` adds to the environment every child gets."""
        env = {**self.env, **kwargs.pop("env", {})}
        log = None
        if "stdout" not in kwargs:
            log = open(LOG_DIR / f"{name}.log", "wb")
            kwargs.update(stdout=log, stderr=subprocess.STDOUT)
        try:
            process = subprocess.Popen(command, cwd=BASE_DIR, env=env, start_new_session=True, **kwargs)
        finally:
            if log is not None:
                log.close()
        self.running.append((name, process))
        return process

    def stop(self, process: subprocess.Popen, timeout: float = 20.0) -> None:
        if process.poll() is None:
            try:
                os.killpg(process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                process.wait()
        else:
            try:  # the leader is gone; its group may not be
                os.killpg(process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        self.running = [(n, p) for n, p in self.running if p is not process]

    def stop_all(self) -> None:
        for _, process in reversed(list(self.running)):
            self.stop(process)

    def gunicorn(self, workers: int = 2, env: dict[str, str] | None = None) -> int:
        """Sync workers on a free port; ``env`` adds settings (``HOT_READ_LOCAL_CACHE``)."""
        port = free_port()
        process = self.start("gunicorn", [
            str(BIN / "gunicorn"), "hybridsite.wsgi:application", "--workers", str(workers),
            "--bind", f"127.0.0.1:{port}", "--log-level", "warning",
        ], env=env or {})

        def answers() -> bool:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/bench/floor/", timeout=2) as response:
                    return response.status == 200
            except OSError:
                return False

        wait_started(process, answers, "gunicorn", 60)
        return port

    def worker(self, queue: str, concurrency: int = 2, beat: bool = True) -> subprocess.Popen:
        log = LOG_DIR / "worker.log"
        beat_args = ["-B", "--schedule", str(LOG_DIR / "celerybeat-schedule")] if beat else []
        process = self.start("worker", [
            str(BIN / "celery"), "-A", "hybridsite", "worker", *beat_args,
            "--queues", queue, "--concurrency", str(concurrency), "--loglevel", "INFO", "--without-gossip",
            "--without-mingle", "--hostname", f"bench{os.getpid()}@%h",
        ])
        wait_started(process, lambda: b" ready." in log.read_bytes(), "celery worker", 60)
        return process
