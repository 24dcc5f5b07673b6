"""The launcher's embedded services are locked down, and `make run` refuses DEBUG off loopback.

Each service test starts a server of its own under a temporary directory with the launcher's own
functions, so that it proves what a fresh `make run` gets, whatever services the suite runs on.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import boto3
import psycopg2
import pytest
import redis
from django.conf import settings
from redis.backoff import NoBackoff
from redis.retry import Retry

from devtools import embedded, launcher, net
from tests.services import database_url

BASE_DIR = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.dynamodb  # the launcher picks, starts and reuses the run's DynamoDB engine


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# --- var/services.env holds SECRET_KEY and the services' passwords ------------------------------


def test_private_file_is_created_0600_even_over_a_readable_one(tmp_path: Path) -> None:
    path = tmp_path / "services.env"
    path.write_text("OLD=1\n")
    path.chmod(0o644)
    previous = os.umask(0)  # the mode must not depend on the caller's umask
    try:
        embedded.write_private(path, "SECRET_KEY=s3cret\n")
    finally:
        os.umask(previous)
    assert mode(path) == 0o600
    assert path.read_text() == "SECRET_KEY=s3cret\n"
    assert [p.name for p in tmp_path.iterdir()] == ["services.env"]  # no temporary file left


def test_the_suites_services_env_is_private() -> None:
    """The file the launcher wrote for this very run (when it started or reused embedded services)."""
    if not launcher.ENV_FILE.is_file():
        pytest.skip("every service came from the environment: no var/services.env")
    assert mode(launcher.ENV_FILE) == 0o600


# --- Postgres: password auth (scram-sha-256), also for a cluster made by an older launcher ------


def refused(url: str) -> str:
    with pytest.raises(psycopg2.OperationalError) as raised:
        psycopg2.connect(url, connect_timeout=5).close()
    return str(raised.value)


@pytest.fixture
def pg_dir() -> Iterator[Path]:
    """A directory of the test's own, outside pytest's: the server runs as the `pgserver` user when
    we are root and must traverse its parents, and any pytest starting meanwhile (another run on
    this machine) makes /tmp/pytest-of-<user> private again."""
    parent = Path(tempfile.mkdtemp(prefix="hybridsite-test-pg-"))
    directory = parent / "pg"
    yield directory
    if (directory / "data" / "postmaster.pid").exists():
        embedded.stop_postgres(directory)
    shutil.rmtree(parent, ignore_errors=True)


def test_embedded_postgres_requires_its_generated_password(pg_dir: Path) -> None:
    url = embedded.start_postgres(pg_dir)["DATABASE_URL"]
    password = (pg_dir / "password").read_text().strip()
    assert f"postgres:{password}@127.0.0.1:" in url
    assert mode(pg_dir / "password") == 0o600
    port = url.rsplit(":", 1)[1].split("/")[0]

    assert "no password supplied" in refused(f"postgresql://postgres@127.0.0.1:{port}/hybridsite")
    assert "password authentication failed" in refused(f"postgresql://postgres:wrong@127.0.0.1:{port}/hybridsite")
    psycopg2.connect(url).close()

    # A second start (the next `make run`) uses the same password.
    embedded.stop_postgres(pg_dir)
    assert embedded.start_postgres(pg_dir)["DATABASE_URL"].startswith(f"postgresql://postgres:{password}@")


def test_trust_cluster_of_an_older_launcher_gets_a_password_and_keeps_its_data(pg_dir: Path) -> None:
    from pgserver import _commands as pg

    data = pg_dir / "data"
    user = embedded._pg_user(pg_dir)
    embedded._chown_to(pg_dir, user)
    pg.initdb(["--auth=trust", "--encoding=utf8", "-U", "postgres"], pgdata=data, user=user)  # as before
    port = net.free_port()
    pg.pg_ctl(["-w", "-o", f"-h 127.0.0.1 -p {port} -k {pg_dir}", "-l", str(pg_dir / "log"), "start"],
              pgdata=data, user=user, timeout=60)
    conn = psycopg2.connect(f"postgresql://postgres@127.0.0.1:{port}/postgres")
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE kept (n int); INSERT INTO kept VALUES (42)")
    conn.close()

    url = embedded.start_postgres(pg_dir)["DATABASE_URL"]  # finds it running, secures it

    assert "no password supplied" in refused(f"postgresql://postgres@127.0.0.1:{port}/postgres")
    conn = psycopg2.connect(url.replace("/hybridsite", "/postgres"))
    with conn.cursor() as cur:
        cur.execute("SELECT n FROM kept")
        assert cur.fetchone() == (42,)
    conn.close()
    assert "trust" not in "".join(
        line for line in (data / "pg_hba.conf").read_text().splitlines() if not line.startswith("#")
    )


# --- Redis: requirepass, kept off the command line ------------------------------------------------


def test_embedded_redis_requires_its_generated_password(tmp_path: Path) -> None:
    directory = tmp_path / "redis"
    url = embedded.start_redis(directory)
    try:
        url = url["REDIS_URL"]
        password = url.split(":", 2)[2].split("@")[0]
        port = int(url.rsplit(":", 1)[1].split("/")[0])
        # One attempt each: redis-py retries an AuthenticationError (a ConnectionError) with backoff.
        once = Retry(NoBackoff(), 0)
        with pytest.raises(redis.AuthenticationError):
            redis.Redis(port=port, socket_timeout=2, protocol=2, retry=once).ping()
        with pytest.raises(redis.AuthenticationError):
            redis.Redis(port=port, password="wrong", socket_timeout=2, retry=once).ping()
        client = redis.Redis.from_url(url, socket_timeout=2)
        assert client.ping()
        # Bounded, and evicting only keys with a TTL: the broker's queues are never evicted.
        assert client.config_get("maxmemory-policy") == {"maxmemory-policy": "volatile-lru"}
        assert int(client.config_get("maxmemory")["maxmemory"]) > 0

        pid = (directory / "redis.pid").read_text().strip()
        assert password not in Path(f"/proc/{pid}/cmdline").read_text()  # `ps` shows that to every user
        assert mode(directory / "redis.conf") == 0o600
    finally:
        embedded.stop_redis(directory)


# --- DynamoDB engine: which one, and never a recorded server of the other --------------------------


def test_engine_falls_back_to_moto_in_one_line_without_the_jar(monkeypatch, capsys) -> None:
    monkeypatch.setattr(embedded, "DYNAMODB_LOCAL_HOME", embedded.BASE_DIR / "var" / "no-such-dynamodb-local")
    assert embedded.dynamodb_engine("") is embedded.MOTO
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and "falling back to moto" in lines[0] and "DynamoDBLocal.jar is missing" in lines[0]

    with pytest.raises(SystemExit, match="DYNAMODB_ENGINE=dynamodb-local, but"):
        embedded.dynamodb_engine("dynamodb-local")  # asked for explicitly: no silent fallback
    assert embedded.dynamodb_engine("moto") is embedded.MOTO


def test_engine_needs_java_on_path(monkeypatch, tmp_path: Path) -> None:
    if not (embedded.DYNAMODB_LOCAL_HOME / "DynamoDBLocal.jar").is_file():
        pytest.skip("the jar is not installed here")
    monkeypatch.setenv("PATH", str(tmp_path))
    assert "java is not on PATH" in (embedded.dynamodb_local_missing() or "")


def test_unknown_engine_is_refused() -> None:
    with pytest.raises(SystemExit, match="DYNAMODB_ENGINE must be one of dynamodb-local, moto"):
        embedded.dynamodb_engine("dynalite")


def test_recorded_endpoint_is_reused_only_for_the_same_engine() -> None:
    """The suite's own endpoint answers; recorded as the other engine it must not be reused."""
    if settings.DYNAMODB_ENGINE not in embedded.ENGINES or not settings.DYNAMODB_ENDPOINT:
        pytest.skip("the suite does not run on an embedded engine")
    recorded = {"DYNAMODB_ENDPOINT": settings.DYNAMODB_ENDPOINT, "DYNAMODB_ENGINE": settings.DYNAMODB_ENGINE}
    same = embedded.MOTO if settings.DYNAMODB_ENGINE == "moto" else embedded.DYNAMODB_LOCAL
    other = embedded.DYNAMODB_LOCAL if same is embedded.MOTO else embedded.MOTO

    assert launcher.reusable(same, recorded) == recorded
    assert launcher.reusable(other, recorded) is None
    assert launcher.reusable(same, {**recorded, "DYNAMODB_ENDPOINT": "http://127.0.0.1:9"}) is None


def test_env_file_of_an_older_launcher_recorded_moto(tmp_path: Path) -> None:
    path = tmp_path / "services.env"
    path.write_text("LAUNCHER_PID=1\nDYNAMODB_ENDPOINT=http://127.0.0.1:5000\n")
    assert launcher.read_recorded(path)["DYNAMODB_ENGINE"] == "moto"


def test_dynamodb_health_is_a_real_request_not_an_open_port() -> None:
    with socket.socket() as listener:  # accepts connections, answers nothing
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        assert not embedded.dynamodb_healthy(f"http://127.0.0.1:{listener.getsockname()[1]}")
    if settings.DYNAMODB_ENDPOINT:
        assert embedded.dynamodb_healthy(settings.DYNAMODB_ENDPOINT)


# --- make run: DEBUG off by default, DEBUG=1 only on loopback ----------------------------------------


@pytest.mark.parametrize(
    "bind", ["127.0.0.1:8000", "localhost:8000", "[::1]:8000", "127.0.0.2:9000", "unix:/tmp/h.sock"]
)
def test_debug_is_allowed_on_loopback(bind: str) -> None:
    assert launcher.debug_refusal({"DEBUG": "1", "BIND": bind}) is None


@pytest.mark.parametrize("bind", ["0.0.0.0:8000", "[::]:8000", "192.0.2.10:8000", "example.com:80", "0.0.0.0"])
def test_debug_is_refused_off_loopback(bind: str) -> None:
    assert launcher.debug_refusal({"DEBUG": "true", "BIND": bind})
    assert launcher.debug_refusal({"DEBUG": "0", "BIND": bind}) is None
    assert launcher.debug_refusal({"BIND": bind}) is None


def test_make_run_with_debug_on_a_public_bind_stops_with_one_line_before_starting_anything() -> None:
    env = {
        "PATH": os.environ["PATH"], "DEBUG": "1", "BIND": "0.0.0.0:8000",
        # Dead services, so that a launcher that went on anyway would fail at once, not serve.
        "DATABASE_URL": "postgresql://x@127.0.0.1:9/x", "REDIS_URL": "redis://127.0.0.1:9/0",
        "DYNAMODB_ENDPOINT": "http://127.0.0.1:9",
    }
    result = subprocess.run(
        [sys.executable, "-m", "devtools.launcher", "run"],
        cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "launcher: DEBUG=1 is refused with BIND=0.0.0.0:8000: bind to a loopback address (127.0.0.1) or unset DEBUG"
    ]


def test_make_run_serves_plain_http_with_debug_off_on_its_bind_host(tmp_path: Path) -> None:
    """What `make run` gives its processes: Django with DEBUG off answers on the bind host, over
    HTTP (no redirect to HTTPS), with cookies a browser keeps on plain HTTP."""
    given = {
        "PATH": os.environ["PATH"], "SECRET_KEY": "k" * 50, "BIND": "0.0.0.0:8000",
        "DATABASE_URL": "postgresql://x@127.0.0.1:9/x", "REDIS_URL": "redis://127.0.0.1:9/0",
        "STATIC_ROOT": str(tmp_path / "static"),
    }
    env = {**launcher.serving_env(given), "DJANGO_SETTINGS_MODULE": "hybridsite.settings"}
    # As `make run` does before it serves: the admin's pages name the collected, hashed files.
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"],
        cwd=BASE_DIR, env=env, check=True, capture_output=True, timeout=120,
    )
    script = (
        "import django, sys; django.setup()\n"
        "from django.conf import settings; from django.test import Client\n"
        "response = Client().get('/admin/login/', HTTP_HOST=sys.argv[1])\n"
        "print(settings.DEBUG, response.status_code, repr(response.cookies['csrftoken']['secure']))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, f"{socket.gethostname()}:8000"],
        cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "200", "''"]


# --- one metrics directory per launcher run --------------------------------------------------------


def test_every_process_of_a_run_gets_one_fresh_metrics_directory(monkeypatch, tmp_path: Path) -> None:
    """Files an earlier run left would be added to this run's totals: the directory starts empty."""
    monkeypatch.setattr(launcher, "VAR", tmp_path)
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR")
    stale = tmp_path / "prometheus" / "counter_4242.db"
    stale.parent.mkdir()
    stale.write_bytes(b"left by an earlier run")
    env = launcher.metrics_env({"BIND": "127.0.0.1:8000"}, "prometheus")
    assert env == {"BIND": "127.0.0.1:8000", "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prometheus")}
    assert list((tmp_path / "prometheus").iterdir()) == []


def test_a_metrics_directory_given_in_the_environment_is_left_as_it_is(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setattr(launcher, "VAR", tmp_path)
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", "/srv/metrics")
    assert launcher.metrics_env({"BIND": "x"}, "prometheus") == {"BIND": "x"}
    assert not (tmp_path / "prometheus").exists()


# --- make run REGIONS=2: a replica region beside the home region -----------------------------------


def test_regions_2_serves_the_home_region_on_bind_and_a_replica_on_the_next_port() -> None:
    assert launcher.run_regions({"REGIONS": "2"}) == [
        launcher.Region("eu-west-1", "127.0.0.1:8000"), launcher.Region("us-east-1", "127.0.0.1:8001"),
    ]
    named = {"REGIONS": "2", "BIND": "0.0.0.0:9000", "HOME_REGION": "eu-central-1", "REPLICA_REGION": "ap-south-1"}
    assert launcher.run_regions(named) == [
        launcher.Region("eu-central-1", "0.0.0.0:9000"), launcher.Region("ap-south-1", "0.0.0.0:9001"),
    ]


@pytest.mark.parametrize(
    "environ", [{}, {"REGIONS": "1"}, {"REGIONS": "eu-west-1,us-east-1", "HOME_REGION": "eu-west-1"}]
)
def test_one_region_stays_the_default(environ: dict[str, str]) -> None:
    """A list of region names is the settings' own REGIONS, passed on as it is."""
    assert launcher.run_regions(environ) == []


@pytest.mark.parametrize("environ, refusal", [
    ({"REGIONS": "3"}, "launcher: REGIONS=3: make run serves one region or two (REGIONS=2)"),
    ({"REGIONS": "2", "REPLICA_REGION": "eu-west-1"},
     "launcher: HOME_REGION and REPLICA_REGION are both eu-west-1: name two regions"),
    ({"REGIONS": "2", "HOME_REGION": "../x"}, "launcher: HOME_REGION must name a region such as eu-west-1, got '../x'"),
    ({"REGIONS": "2", "BIND": "unix:/tmp/h.sock"},
     "launcher: REGIONS=2 serves the replica on BIND's next port: BIND=unix:/tmp/h.sock has no port"),
])
def test_what_two_regions_cannot_serve_is_refused_in_one_line(environ: dict[str, str], refusal: str) -> None:
    with pytest.raises(SystemExit) as refused:
        launcher.run_regions(environ)
    assert str(refused.value) == refusal


def test_each_regions_processes_get_their_regions_services_and_the_home_regions_postgres_and_broker() -> None:
    regions = launcher.run_regions({"REGIONS": "2"})
    urls = {
        "eu-west-1": {"DYNAMODB_ENDPOINT": "http://127.0.0.1:7001", "REDIS_URL": "redis://127.0.0.1:7002/0"},
        "us-east-1": {"DYNAMODB_ENDPOINT": "http://127.0.0.1:7003", "REDIS_URL": "redis://127.0.0.1:7004/0"},
    }
    given = {
        "REGIONS": "2", "DATABASE_URL": "postgresql://x@127.0.0.1:7000/x", "SECRET_KEY": "k" * 50,
        "DYNAMODB_ENDPOINT": "http://127.0.0.1:7001", "REDIS_URL": "redis://127.0.0.1:7002/0",
        "PATH": os.environ["PATH"], "STATIC_ROOT": "/nonexistent",
    }
    every_region = {
        "REGIONS": "eu-west-1,us-east-1", "HOME_REGION": "eu-west-1",
        "DYNAMODB_ENDPOINT_EU_WEST_1": "http://127.0.0.1:7001", "REDIS_URL_EU_WEST_1": "redis://127.0.0.1:7002/0",
        "DYNAMODB_ENDPOINT_US_EAST_1": "http://127.0.0.1:7003", "REDIS_URL_US_EAST_1": "redis://127.0.0.1:7004/0",
        "DATABASE_URL": "postgresql://x@127.0.0.1:7000/x", "CELERY_BROKER_URL": "redis://127.0.0.1:7002/0",
    }
    home, replica = (launcher.region_env(given, regions, region, urls) for region in regions)
    assert home.items() >= {
        **every_region, "HYBRIDSITE_REGION": "eu-west-1", "BIND": "127.0.0.1:8000",
        "DYNAMODB_ENDPOINT": "http://127.0.0.1:7001", "REDIS_URL": "redis://127.0.0.1:7002/0",
    }.items()
    assert replica.items() >= {
        **every_region, "HYBRIDSITE_REGION": "us-east-1", "AWS_REGION": "us-east-1", "BIND": "127.0.0.1:8001",
        "DYNAMODB_ENDPOINT": "http://127.0.0.1:7003", "REDIS_URL": "redis://127.0.0.1:7004/0",
    }.items()
    # ...and the settings take it as it is (they refuse a region's variables that disagree).
    script = (
        "import django; django.setup(); from django.conf import settings as s\n"
        "print(s.HYBRIDSITE_REGION, s.HOME_REGION, s.DYNAMODB_ENDPOINT, s.REDIS_URL, s.CELERY_BROKER_URL)"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=BASE_DIR, capture_output=True, text=True, timeout=60,
        env={**replica, "DJANGO_SETTINGS_MODULE": "hybridsite.settings"},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "us-east-1", "eu-west-1", "http://127.0.0.1:7003", "redis://127.0.0.1:7004/0", "redis://127.0.0.1:7002/0",
    ]


def _two_free_ports() -> int:
    """A port whose next one is free too (the replica's), both below the kernel's ephemeral range:
    a port from that range can be taken by any outgoing connection (the launcher's own processes
    make many) before the replica's web binds it."""
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    for port in random.sample(range(low // 2, low - 1), 500):
        try:
            with socket.socket() as first, socket.socket() as second:
                first.bind(("127.0.0.1", port))
                second.bind(("127.0.0.1", port + 1))
            return port
        except OSError:
            continue
    raise RuntimeError("no two adjacent free ports below the ephemeral range")


def _get(url: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()
    except OSError:  # not listening yet
        return 0, {}, b""


@contextmanager
def _own_database(name: str) -> Iterator[str]:
    """A database of the test's own on the suite's Postgres server, dropped afterwards."""
    url = database_url()
    admin = psycopg2.connect(url)
    admin.autocommit = True
    try:
        with admin.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{name}"')
        yield url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def _drop_tables(prefix: str) -> None:
    client = boto3.client(
        "dynamodb", endpoint_url=settings.DYNAMODB_ENDPOINT, region_name=settings.AWS_REGION,
        aws_access_key_id=settings.AWS_ACCESS_KEY_ID, aws_secret_access_key=settings.AWS_SECRET_ACCESS_KEY,
    )
    for page in client.get_paginator("list_tables").paginate():
        for name in page["TableNames"]:
            if name.startswith(prefix):
                client.delete_table(TableName=name)


@pytest.mark.aws_engine(reason="REGIONS=2 runs a second DynamoDB Local and the replication stand-in (Java)")
def test_make_run_with_two_regions_serves_both_and_the_replica_follows_the_home_region(tmp_path: Path) -> None:
    """`make run REGIONS=2`, briefly: a product read in each region over HTTP, its price changed
    through the home region's internal API, and the replica region answering the new version."""
    tag = uuid.uuid4().hex[:8]
    port = _two_free_ports()
    prefix = f"launcher-{tag}-"
    redis_url = settings.CACHES["default"]["LOCATION"].rsplit("/", 1)[0] + "/7"  # a Redis database of its own
    redis.Redis.from_url(redis_url).flushdb()
    log_path = tmp_path / "launcher.log"
    with _own_database(f"hybridsite_launcher_{tag}") as database:
        env = {
            "PATH": os.environ["PATH"], "SECRET_KEY": "k" * 50, "REGIONS": "2", "BIND": f"127.0.0.1:{port}",
            "DATABASE_URL": database, "REDIS_URL": redis_url, "DYNAMODB_ENDPOINT": settings.DYNAMODB_ENDPOINT,
            "DYNAMODB_ENGINE": "dynamodb-local", "DYNAMODB_TABLE_PREFIX": prefix, "SEED_PRODUCTS": "3",
            "ADMIN_PASSWORD": "a" * 20, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
            "STATIC_ROOT": str(tmp_path / "static"),
        }
        (tmp_path / "metrics").mkdir()
        with open(log_path, "wb") as log:
            run = subprocess.Popen(
                [sys.executable, "-m", "devtools.launcher", "run"], cwd=BASE_DIR, env=env,
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )
        home, replica = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{port + 1}"
        product = "/api/products/SKU-000001/"
        try:
            net.wait_for(
                lambda: run.poll() is not None or all(_get(url + product)[0] == 200 for url in (home, replica)),
                240, 0.5, "both regions serving",
            )
            assert run.poll() is None, log_path.read_text()[-3000:]
            output = log_path.read_text()
            assert f"eu-west-1 (home region) on http://127.0.0.1:{port}/" in output
            assert f"us-east-1 (replica region) on http://127.0.0.1:{port + 1}/" in output

            def own_layers(url: str) -> tuple[int, str]:
                status, headers, body = _get(url + product)
                return (int(json.loads(body)["version"]) if status == 200 else 0), headers.get("X-Served-From", "")

            # The replica answers from its own layers once the product's projection has reached its
            # DynamoDB (replicated; before that, from the home region's DynamoDB).
            net.wait_for(lambda: own_layers(replica)[1] == "cache", 60, 0.2, "the replica's own Redis")
            versions = {url: own_layers(url)[0] for url in (home, replica)}
            assert versions[home] == versions[replica] > 0

            token = subprocess.run(
                [sys.executable, "manage.py", "drf_create_token", "admin"], cwd=BASE_DIR, check=True,
                env={k: v for k, v in env.items() if k != "REGIONS"}, capture_output=True, text=True, timeout=60,
            ).stdout.split()[2]
            request = urllib.request.Request(
                f"{home}/api/internal/products/SKU-000001/price/", method="PUT",
                data=json.dumps({"currency": "EUR", "amount": "12.34"}).encode(),
                headers={"Authorization": f"Token {token}", "Content-Type": "application/json"},
            )
            with urllib.request.urlopen(request, timeout=10) as response:
                written = json.loads(response.read())["version"]
            assert written > versions[home]

            def replica_answers_it() -> bool:
                status, _, body = _get(replica + product)
                return status == 200 and int(json.loads(body)["version"]) == written

            net.wait_for(replica_answers_it, 60, 0.2, "the replica region answering the home region's write")
            assert json.loads(_get(replica + product)[2])["prices"]["EUR"] == "12.34"
        finally:
            os.kill(run.pid, signal.SIGTERM)
            try:
                run.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(run.pid, signal.SIGKILL)
                run.wait()
            _drop_tables(prefix)
            redis.Redis.from_url(redis_url).flushdb()
        assert run.returncode == 0, log_path.read_text()[-3000:]
        assert not (launcher.REGIONS_DIR / str(run.pid)).exists()  # the replica's servers stopped and removed
