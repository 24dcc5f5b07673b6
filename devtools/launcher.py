"""Start or reuse the services Hybridsite needs, then run the app, the test suite or the bench.

A service whose URL is in the environment is used as it is. Otherwise an embedded server
(``devtools.embedded``) is started under ``var/``; ``DYNAMODB_ENGINE`` picks DynamoDB Local or moto.
The chosen URLs and secrets go to ``var/services.env`` (mode 0600) so that other shells and tools
use the same servers. A healthy server recorded there is reused; servers this process started (or
adopted from a dead launcher) are stopped when it exits.

This is a process supervisor, not Django code: it reads the environment only to decide which
servers to start and hands everything else to ``hybridsite.settings``.

    python -m devtools.launcher services   # start or reuse, print the env lines, wait for Ctrl-C
    python -m devtools.launcher run        # services + migrate + setup + seed + web/worker/beat/streams/follow
                                           # (DEBUG off; DEBUG=1 only with a loopback BIND)
    REGIONS=2 python -m devtools.launcher run  # the same, and a replica region beside it (see run_regions)
    python -m devtools.launcher test ARGS  # services + pytest ARGS
    python -m devtools.launcher bench ARGS # services + bench/run.py ARGS (`make bench`)
"""

from __future__ import annotations

import ipaddress
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from devtools.embedded import (
    BASE_DIR,
    BIN,
    DYNAMODB_LOCAL,
    POSTGRES,
    REDIS,
    VAR,
    Embedded,
    dynamodb_engine,
    dynamodb_local_missing,
    log,
    pid_alive,
    start_dynamodb_local,
    start_redis,
    stop_dynamodb_local,
    stop_redis,
    write_private,
)
from devtools.net import NotReady
from devtools.replication import READY
from hybridsite.envfile import read_env_file

ENV_FILE = VAR / "services.env"


def read_recorded(path: Path = ENV_FILE) -> dict[str, str]:
    """What ``var/services.env`` records. A file written before there was a choice of engine ran moto."""
    values = read_env_file(path)
    if "DYNAMODB_ENDPOINT" in values:
        values.setdefault("DYNAMODB_ENGINE", "moto")
    return values


def reusable(service: Embedded, recorded: dict[str, str]) -> dict[str, str] | None:
    """What var/services.env recorded for this service, if it is the same kind of server (a DynamoDB
    endpoint of the other engine is not) and it answers; else None."""
    url = recorded.get(service.env_var, "")
    if not url or any(recorded.get(key) != value for key, value in service.identity.items()):
        return None
    if not service.healthy(url):
        return None
    return {k: v for k, v in recorded.items() if k == service.env_var or k in service.records}


class Services:
    """Context manager: ensures every service, writes var/services.env, stops what it owns.

    With ``private_dynamodb`` (a directory of this launcher's own), an embedded DynamoDB Local is
    this launcher's, in memory, neither shared nor recorded, and removed with its directory at
    exit: the suite and the bench start from empty tables, and do not wait for SQLite to sync every
    write to disk (about 100 writes/s here), nor read stream records that earlier runs left in it."""

    def __init__(self, private_dynamodb: Path | None = None, short_lived: bool = False) -> None:
        self.owned: list[Embedded] = []
        self.env: dict[str, str] = {}
        self.private_dynamodb = private_dynamodb
        self.short_lived = short_lived  # the private DynamoDB Local serves one test run
        self.private_started = False

    def _wanted(self) -> tuple[list[Embedded], dict[str, str], bool]:
        """The embedded servers to ensure, what children get for the services given by env, and
        whether this launcher runs a DynamoDB Local of its own."""
        wanted = [service for service in (POSTGRES, REDIS) if not os.environ.get(service.env_var)]
        given: dict[str, str] = {}
        if os.environ.get("DYNAMODB_ENDPOINT"):
            # Not one of ours: what it runs is what DYNAMODB_ENGINE says (settings has the default),
            # never what var/services.env recorded for an embedded server.
            given["DYNAMODB_ENGINE"] = os.environ.get("DYNAMODB_ENGINE", "")
        else:
            engine = dynamodb_engine(os.environ.get("DYNAMODB_ENGINE", "").strip())
            if engine is DYNAMODB_LOCAL and self.private_dynamodb is not None:
                return wanted, given, True
            wanted.append(engine)
        return wanted, given, False

    def __enter__(self) -> dict[str, str]:
        VAR.mkdir(exist_ok=True)
        recorded = read_recorded()
        owner_pid = int(recorded.get("LAUNCHER_PID", "0") or 0)
        owner_alive = owner_pid not in (0, os.getpid()) and pid_alive(owner_pid)
        written: dict[str, str] = {}
        wanted, given, private = self._wanted()
        for name, var in (("postgres", "DATABASE_URL"), ("redis", "REDIS_URL"), ("dynamodb", "DYNAMODB_ENDPOINT")):
            if os.environ.get(var):
                log(f"{name}: using {var} from the environment")
        try:
            if private and self.private_dynamodb is not None:
                log(f"dynamodb: starting this run's own DynamoDB Local, in memory ({_relative(self.private_dynamodb)})")
                self.private_started = True  # stop() stops it, even if it fails to come up
                given.update(start_dynamodb_local(self.private_dynamodb, in_memory=True, short_lived=self.short_lived))
            for service in wanted:
                previous = recorded.get(service.env_var, "")
                values = reusable(service, recorded)
                if values:
                    if owner_alive:
                        log(f"{service.name}: reusing {_redact(previous)} (owned by launcher {owner_pid})")
                    else:
                        log(f"{service.name}: adopting {_redact(previous)} left by an earlier launcher")
                        self.owned.append(service)
                else:
                    log(f"{service.name}: starting an embedded server {_describe(service)}".rstrip())
                    values = service.start()
                    self.owned.append(service)
                    log(f"{service.name}: {_redact(values[service.env_var])}")
                written.update(values)
        except BaseException:
            self.stop()
            raise
        if written and not os.environ.get("SECRET_KEY"):
            # A local key, so that manage.py works in any shell that uses these services.
            written["SECRET_KEY"] = recorded.get("SECRET_KEY") or secrets.token_urlsafe(50)
        if written:
            # A live launcher's record stands (its servers outlive ours); otherwise ours replaces it,
            # keeping what was recorded for services this one was given by the environment.
            kept = {k: v for k, v in recorded.items() if k != "LAUNCHER_PID"}
            merged = written | kept if owner_alive else kept | written
            lines = [
                "# written by devtools.launcher; source it to use the same services",
                f"LAUNCHER_PID={owner_pid if owner_alive else os.getpid()}",
            ]
            lines += [f"{key}={value}" for key, value in merged.items()]
            write_private(ENV_FILE, "\n".join(lines) + "\n")
        self.env = {**os.environ, **written, **given}
        return self.env

    def stop(self) -> None:
        if self.private_started and self.private_dynamodb is not None:
            log("dynamodb: stopping this run's own DynamoDB Local")
            stop_dynamodb_local(self.private_dynamodb)
            shutil.rmtree(self.private_dynamodb, ignore_errors=True)  # in memory: only its pid file and log
            self.private_started = False
        for service in reversed(self.owned):
            log(f"{service.name}: stopping")
            try:
                service.stop()
            except Exception as exc:  # a failed stop must not hide the others
                log(f"{service.name}: stop failed: {exc}")
        if self.owned and ENV_FILE.is_file() and read_recorded().get("LAUNCHER_PID") == str(os.getpid()):
            ENV_FILE.unlink()
        self.owned.clear()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _relative(path: Path) -> str:
    return str(path.relative_to(BASE_DIR)) if path.is_relative_to(BASE_DIR) else str(path)


def _describe(service: Embedded) -> str:
    return f"({service.identity['DYNAMODB_ENGINE']})" if "DYNAMODB_ENGINE" in service.identity else ""


def _redact(url: str) -> str:
    """A URL fit for the log: the password stays in var/services.env."""
    parts = urlsplit(url)
    if parts.password:
        return parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@")).geturl()
    return url


def manage(env: dict[str, str], *args: str) -> None:
    subprocess.run([sys.executable, str(BASE_DIR / "manage.py"), *args], check=True, env=env, cwd=BASE_DIR)


def _pump(name: str, stream, width: int = 7) -> None:
    for line in iter(stream.readline, b""):
        _write_line(name, line, width)


def _write_line(name: str, line: bytes, width: int) -> None:
    sys.stdout.buffer.write(f"{name:<{width}}| ".encode() + line)
    sys.stdout.flush()


DEFAULT_BIND = "127.0.0.1:8000"
TRUE = {"1", "true", "yes", "on"}  # as hybridsite.settings.Env reads a boolean


def bind_host(bind: str) -> str | None:
    """The host of a gunicorn ``--bind`` value; None for a unix socket or a file descriptor."""
    if bind.startswith(("unix:", "fd://")):
        return None
    if bind.startswith("["):
        return bind[1:bind.find("]")]
    host, colon, _ = bind.rpartition(":")
    return host if colon else bind


def is_loopback(host: str | None) -> bool:
    """Reachable from this machine only (a unix socket counts)."""
    if host is None or host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def debug_refusal(environ: dict[str, str]) -> str | None:
    """DEBUG is opt-in for `make run`, and only on a loopback bind: its error pages show settings
    and source to whoever reaches them."""
    bind = environ.get("BIND", DEFAULT_BIND)
    if environ.get("DEBUG", "").strip().lower() in TRUE and not is_loopback(bind_host(bind)):
        return f"launcher: DEBUG=1 is refused with BIND={bind}: bind to a loopback address (127.0.0.1) or unset DEBUG"
    return None


def serving_env(env: dict[str, str]) -> dict[str, str]:
    """What `make run`'s processes need to serve plain HTTP on BIND with DEBUG off: the bind host
    allowed, no redirect to HTTPS, cookies not marked Secure. Values set in the environment win."""
    bind = env.get("BIND", DEFAULT_BIND)
    hosts = ["localhost", "127.0.0.1", "[::1]"]
    host = bind_host(bind)
    if host in ("0.0.0.0", "::"):
        hosts += [socket.gethostname(), socket.getfqdn()]
    elif host and not is_loopback(host):
        hosts.append(host)
    defaults = {
        "DEBUG": "0",
        "BIND": bind,
        "ALLOWED_HOSTS": ",".join(dict.fromkeys(hosts)),
        "SECURE_SSL_REDIRECT": "0",
        "SESSION_COOKIE_SECURE": "0",
        "CSRF_COOKIE_SECURE": "0",
    }
    return defaults | env


Command = tuple[list[str], dict[str, str]]
"""A process to run: its command line and its environment."""


def home_processes(env: dict[str, str]) -> dict[str, Command]:
    """The home region's processes (the only ones of a one-region run): web, the worker (the relay),
    the outbox listener, the write-back consumer, the cache follower and beat."""
    commands = {
        "web": [
            str(BIN / "gunicorn"), "hybridsite.wsgi", "-c", "python:hybridsite.gunicorn_conf", "--bind", env["BIND"],
            "--workers", "2", "--access-logfile", "-",
        ],
        "worker": [str(BIN / "celery"), "-A", "hybridsite", "worker", "--loglevel", "INFO", "--concurrency", "2"],
        "listen": [sys.executable, str(BASE_DIR / "manage.py"), "outbox_listen"],
        "streams": [sys.executable, str(BASE_DIR / "manage.py"), "streams_consume"],
        "follow": [sys.executable, str(BASE_DIR / "manage.py"), "cache_follow"],
        "beat": [
            str(BIN / "celery"), "-A", "hybridsite", "beat", "--loglevel", "INFO",
            "--schedule", str(VAR / "celerybeat-schedule"),
        ],
    }
    return {name: (command, env) for name, command in commands.items()}


def replica_processes(env: dict[str, str]) -> dict[str, Command]:
    """A replica region's processes: web, and the cache follower (its Redis kept current from its
    own tables' streams). It writes no projection and consumes no cart stream (the home region's
    consumer reads every region's cart writes, replicated)."""
    commands = {
        "web": [
            str(BIN / "gunicorn"), "hybridsite.wsgi", "-c", "python:hybridsite.gunicorn_conf", "--bind", env["BIND"],
            "--workers", "2", "--access-logfile", "-",
        ],
        "follow": [sys.executable, str(BASE_DIR / "manage.py"), "cache_follow"],
    }
    return {name: (command, env) for name, command in commands.items()}


def _start(name: str, command: Command, width: int) -> subprocess.Popen:
    process = subprocess.Popen(
        command[0], env=command[1], cwd=BASE_DIR, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    threading.Thread(target=_pump, args=(name, process.stdout, width), daemon=True).start()
    return process


def serve(processes: dict[str, Command], first: dict[str, Command] | None = None) -> int:
    """Run the processes until one exits or we are told to stop; then stop them all. Those of
    ``first`` are started before the others, each once it printed a line starting with
    :data:`devtools.replication.READY` (the replication stand-in: a write made before it reads
    its streams would never reach the other region)."""
    width = max(len(name) for name in [*processes, *(first or {})])
    procs: dict[str, subprocess.Popen] = {}
    stopping = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopping.set())
    try:
        for name, command in (first or {}).items():
            procs[name] = _start_when_ready(name, command, width, stopping)
        for name, command in processes.items():
            procs[name] = _start(name, command, width)
        if not stopping.is_set():
            log("every process started; Ctrl-C stops everything")
        while not stopping.is_set() and all(p.poll() is None for p in procs.values()):
            stopping.wait(0.5)
    finally:
        _stop_all(procs)
    return 0


def _start_when_ready(name: str, command: Command, width: int, stopping: threading.Event) -> subprocess.Popen:
    process = subprocess.Popen(
        command[0], env=command[1], cwd=BASE_DIR, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    assert process.stdout is not None
    for line in iter(process.stdout.readline, b""):
        _write_line(name, line, width)
        if line.startswith(READY.encode()) or stopping.is_set():
            break
    else:
        process.wait()
        raise SystemExit(f"launcher: {name} exited with {process.returncode} before it was ready")
    threading.Thread(target=_pump, args=(name, process.stdout, width), daemon=True).start()
    return process


def _stop_all(procs: dict[str, subprocess.Popen]) -> None:
    for proc in procs.values():
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for name, proc in procs.items():
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log(f"{name} exited with {proc.returncode}")


# --- make run REGIONS=2: a replica region beside the home region ---------------------------------

DEFAULT_HOME_REGION = "eu-west-1"
DEFAULT_REPLICA_REGION = "us-east-1"
REGION_NAME = re.compile(r"[a-z][a-z0-9-]*[a-z0-9]")  # as AWS spells one; settings check it again
REGIONS_DIR = VAR / "regions"


@dataclass(frozen=True)
class Region:
    """A region `make run` serves: its name and where its web process listens."""

    name: str
    bind: str


def run_regions(environ: Mapping[str, str]) -> list[Region]:
    """``REGIONS=2``: the home region (``HOME_REGION``, default eu-west-1) on ``BIND`` and a replica
    region (``REPLICA_REGION``, default us-east-1) on the next port, home first. Empty for one
    region: ``REGIONS`` unset or 1, or a list of region names (the settings' own variable, passed on
    as it is). What cannot be served stops the launcher with one line."""
    raw = environ.get("REGIONS", "").strip()
    if not raw.isdigit() or raw == "1":
        return []
    if raw != "2":
        raise SystemExit(f"launcher: REGIONS={raw}: make run serves one region or two (REGIONS=2)")
    names = [environ.get("HOME_REGION") or DEFAULT_HOME_REGION, environ.get("REPLICA_REGION") or DEFAULT_REPLICA_REGION]
    for variable, name in zip(("HOME_REGION", "REPLICA_REGION"), names):
        if not REGION_NAME.fullmatch(name):
            raise SystemExit(f"launcher: {variable} must name a region such as eu-west-1, got {name!r}")
    if names[0] == names[1]:
        raise SystemExit(f"launcher: HOME_REGION and REPLICA_REGION are both {names[0]}: name two regions")
    bind = environ.get("BIND", DEFAULT_BIND)
    host = bind_host(bind)
    port = bind.rpartition(":")[2]
    if host is None or not port.isdigit():
        raise SystemExit(f"launcher: REGIONS=2 serves the replica on BIND's next port: BIND={bind} has no port")
    replica_bind = f"{bind.rpartition(':')[0]}:{int(port) + 1}"
    return [Region(names[0], bind), Region(names[1], replica_bind)]


def regional_name(name: str, region: str) -> str:
    """``REDIS_URL`` of ``us-east-1`` is ``REDIS_URL_US_EAST_1`` (as hybridsite.settings names it)."""
    return f"{name}_{region.upper().replace('-', '_')}"


def region_env(
    env: dict[str, str], regions: list[Region], region: Region, urls: dict[str, dict[str, str]]
) -> dict[str, str]:
    """A region's processes' environment: that region's name, DynamoDB and Redis, every region's
    named (``DYNAMODB_ENDPOINT_<REGION>``, ``REDIS_URL_<REGION>``), and the home region's Postgres
    and broker. ``urls`` holds each region's ``DYNAMODB_ENDPOINT`` and ``REDIS_URL``."""
    home = regions[0]
    given = {**env}
    given.pop("REGIONS", None)
    regional = {
        regional_name(variable, other.name): urls[other.name][variable]
        for other in regions for variable in ("DYNAMODB_ENDPOINT", "REDIS_URL")
    }
    return {
        **given,
        **regional,
        **urls[region.name],
        "HYBRIDSITE_REGION": region.name,
        "AWS_REGION": region.name,
        "HOME_REGION": home.name,
        "REGIONS": ",".join(other.name for other in regions),
        "BIND": region.bind,
        "CELERY_BROKER_URL": env.get("CELERY_BROKER_URL") or urls[home.name]["REDIS_URL"],
    }


class ReplicaServices:
    """Context manager: a replica region's own Redis and DynamoDB Local, under
    ``var/regions/<launcher pid>/<region>/``, started for this run and stopped with it. Its DynamoDB
    Local runs in memory: the stand-in fills it from the home region's tables at each start, as AWS
    fills a new replica (the stand-in replicates only what is written while it runs). A URL given
    in the environment (``DYNAMODB_ENDPOINT_<REGION>``, ``REDIS_URL_<REGION>``) is used as it is."""

    def __init__(self, region: str) -> None:
        self.region = region
        self.directory = REGIONS_DIR / str(os.getpid()) / region

    def __enter__(self) -> dict[str, str]:
        _sweep_regions()
        urls = {}
        try:
            for variable, start in (("REDIS_URL", start_redis), ("DYNAMODB_ENDPOINT", self._start_dynamodb)):
                given = os.environ.get(regional_name(variable, self.region))
                if given:
                    log(f"{self.region}: using {regional_name(variable, self.region)} from the environment")
                    urls[variable] = given
                    continue
                name = variable.split("_")[0].lower()
                log(f"{self.region}: starting {name} of its own")
                urls[variable] = start(self.directory / name)[variable]
                log(f"{self.region}: {name} at {_redact(urls[variable])}")
        except BaseException:
            self.stop()
            raise
        return urls

    @staticmethod
    def _start_dynamodb(directory: Path) -> dict[str, str]:
        missing = dynamodb_local_missing()
        if missing:
            raise SystemExit(f"launcher: REGIONS=2 needs DynamoDB Local (streams, a second server): {missing}")
        return start_dynamodb_local(directory, in_memory=True)

    def stop(self) -> None:
        _stop_region_directory(self.directory)
        shutil.rmtree(self.directory.parent, ignore_errors=True)

    def __exit__(self, *exc: object) -> None:
        log(f"{self.region}: stopping its redis and dynamodb")
        self.stop()


def _stop_region_directory(directory: Path) -> None:
    stop_redis(directory / "redis")
    stop_dynamodb_local(directory / "dynamodb")


def _sweep_regions() -> None:
    """Stop and remove what a launcher that died left under var/regions/."""
    if not REGIONS_DIR.is_dir():
        return
    for directory in REGIONS_DIR.iterdir():
        if directory.name.isdigit() and int(directory.name) != os.getpid() and not pid_alive(int(directory.name)):
            for region in directory.iterdir():
                _stop_region_directory(region)
            shutil.rmtree(directory, ignore_errors=True)


def metrics_env(env: dict[str, str], name: str) -> dict[str, str]:
    """Every process this launcher starts shares one fresh PROMETHEUS_MULTIPROC_DIR, so that /metrics
    adds up gunicorn's and Celery's processes; files of an earlier run would be counted again, so it
    starts empty. A directory given in the environment is used as it is."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return env
    path = VAR / name
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return {**env, "PROMETHEUS_MULTIPROC_DIR": str(path)}


def main(argv: list[str]) -> int:
    try:
        return _main(argv)
    except NotReady as exc:  # one line, as every other refusal of the launcher
        raise SystemExit(f"launcher: {exc} (see var/*/log)") from None


def _main(argv: list[str]) -> int:
    command = argv[0] if argv else "services"
    if command not in {"services", "run", "test", "bench"}:
        raise SystemExit(__doc__)
    refusal = debug_refusal(dict(os.environ)) if command == "run" else None
    if refusal:
        raise SystemExit(refusal)
    # Per launcher: two runs in one checkout must neither share nor stop each other's server.
    private = VAR / f"dynamodb-{command}" / str(os.getpid()) if command in {"test", "bench"} else None
    with Services(private_dynamodb=private, short_lived=command == "test") as env:
        if command == "services":
            for key in ("DATABASE_URL", "REDIS_URL", "DYNAMODB_ENDPOINT", "DYNAMODB_ENGINE"):
                print(f"{key}={env.get(key, '')}")
            signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
            try:
                signal.pause()
            except KeyboardInterrupt:
                pass
            return 0
        if command == "test":
            env = {"SECRET_KEY": secrets.token_urlsafe(32), **env, "DJANGO_SETTINGS_MODULE": "tests.settings"}
            env = metrics_env(env, "prometheus-test")
            return subprocess.run([str(BIN / "pytest"), *argv[1:]], env=env, cwd=BASE_DIR).returncode
        if command == "bench":
            env = {"SECRET_KEY": secrets.token_urlsafe(32), **env, "DJANGO_SETTINGS_MODULE": "bench.settings"}
            env = metrics_env(env, "prometheus-bench")
            bench = subprocess.Popen(
                [sys.executable, str(BASE_DIR / "bench" / "run.py"), *argv[1:]], env=env, cwd=BASE_DIR
            )
            # Ctrl-C reaches the bench as well: wait while it stops the processes it started.
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            return bench.wait()
        regions = run_regions(os.environ)
        if regions:
            return run_two_regions(env, regions)
        if env.get("REGIONS", "").strip() == "1":  # the launcher's count, not the settings' list of names
            env.pop("REGIONS")
        env = metrics_env(serving_env(env), "prometheus")
        prepare_home(env)
        log(f"serving on http://{env['BIND']}/ (admin at /admin/, health at /api/health/)")
        return serve(home_processes(env))


def prepare_home(env: dict[str, str]) -> None:
    """The home region's database, tables, demo data, admin user and static files."""
    manage(env, "migrate", "--noinput")
    manage(env, "projections_setup", "--backfill-created")
    manage(env, "seed_demo", "--if-empty", "--products", env.get("SEED_PRODUCTS", "2000"))
    manage(env, "ensure_admin")
    manage(env, "collectstatic", "--noinput", "--verbosity", "0")


def run_two_regions(env: dict[str, str], regions: list[Region]) -> int:
    """The home region as a one-region run has it, a replica region beside it with its own Redis and
    DynamoDB Local, and the replication stand-in between the two DynamoDB Local processes (it
    fills the replica's tables first)."""
    home, replica = regions
    if env.get("DYNAMODB_ENGINE") == "moto":
        raise SystemExit("launcher: REGIONS=2 needs DynamoDB Local (streams, a second server); this run has moto")
    with ReplicaServices(replica.name) as replica_urls:
        urls = {
            home.name: {"DYNAMODB_ENDPOINT": env["DYNAMODB_ENDPOINT"], "REDIS_URL": env["REDIS_URL"]},
            replica.name: replica_urls,
        }
        envs = {
            region.name: metrics_env(
                serving_env(region_env(env, regions, region, urls)),
                "prometheus" if region is home else f"prometheus-{region.name}",
            )
            for region in regions
        }
        prepare_home(envs[home.name])
        manage(envs[replica.name], "projections_setup")  # the replica's tables (AWS: the global table's replicas)
        stand_in = [
            sys.executable, "-m", "devtools.replication", "--fill",
            f"{home.name}={urls[home.name]['DYNAMODB_ENDPOINT']}",
            f"{replica.name}={urls[replica.name]['DYNAMODB_ENDPOINT']}",
        ]
        processes = {
            f"{region.name} {name}": command
            for region in regions
            for name, command in (home_processes if region is home else replica_processes)(envs[region.name]).items()
        }
        for region in regions:
            role = "home region" if region is home else "replica region"
            log(f"{region.name} ({role}) on http://{region.bind}/ (admin at /admin/, health at /api/health/)")
        return serve(processes, first={"replication": (stand_in, envs[home.name])})


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
