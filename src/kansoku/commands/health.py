"""Is a service on this machine ready? `kansoku health NAME`, and the container image's
healthcheck, `python -m kansoku.commands.health`.

A healthcheck runs every few seconds in every container, so this module imports only the
standard library, `kansoku.topology` and `kansoku.kit.languages`: about 60 ms of CPU a
check, where going through the `kansoku` command (which imports every subcommand) costs
about 0.8 s.

What it says is in the reader's language — the command line's for `kansoku health`, else
KANSOKU_LANG's or LANG's — through the same catalogs as the rest of kansoku, but looked
up without Babel (`languages.plain_gettext`): Babel and the catalog's parse would cost a
check more than the check itself. A healthy service says nothing, so nothing is read;
a Japanese catalog is read only for a check that has something to say.
"""

from __future__ import annotations

import os
import sys

from kansoku import topology
from kansoku.kit.languages import command_line_language, plain_gettext, set_language

#: Marks a text for the catalogs (scripts/messages finds `_`) and says it in the current
#: language.
_ = plain_gettext

#: The variable that names the service when the command line does not: the container
#: image has one entry point and one healthcheck for every service, and both read it.
SERVICE_VARIABLE = "KANSOKU_SERVICE"

#: How long a check waits for the answer: a container runtime's probe timeout is a few
#: seconds, and a readiness check that takes longer is itself the problem.
TIMEOUT_SECONDS = 3.0


#: Listen addresses that are not addresses to connect to: a service listening on one of
#: them is reached on loopback.
WILDCARD_ADDRESSES = frozenset({"0.0.0.0", "::"})


class UnknownService(Exception):
    """No service was named, or the name is not one of kansoku's."""


def service_named(name: str | None) -> topology.ServiceInfo:
    """The service `name` names, or else `KANSOKU_SERVICE`."""
    name = name or os.environ.get(SERVICE_VARIABLE)
    choices = ", ".join(topology.SERVICES_BY_NAME)
    if not name:
        raise UnknownService(_("name the service (kansoku serve catalog) or set {variable} "
                               "— one of: {names}").format(variable=SERVICE_VARIABLE,
                                                          names=choices))
    info = topology.SERVICES_BY_NAME.get(name)
    if info is None:
        raise UnknownService(_("there is no component '{name}' — choose one of: {names}"
                               ).format(name=name, names=choices))
    return info


def readiness_problem(service: topology.ServiceInfo, timeout: float = TIMEOUT_SECONDS
                      ) -> str | None:
    """Why `service`, on this machine, is not ready — or None when its `/health/ready`
    answers 200. Its address and port are read as the service reads them (`KANSOKU_HOST`,
    where a wildcard means loopback, and `KANSOKU_<NAME>_PORT`, or the defaults)."""
    host = os.environ.get("KANSOKU_HOST") or "127.0.0.1"
    if host in WILDCARD_ADDRESSES:
        host = "127.0.0.1"
    elif ":" in host:
        host = f"[{host}]"
    variable = topology.port_variable(service.name)
    port = os.environ.get(variable) or str(service.default_port)
    if not port.strip().isdigit():
        return bad_port(variable, port)
    url = f"http://{host}:{port.strip()}/health/ready"
    try:
        status = answer_status(url, timeout, quiet=False)
    except (OSError, ValueError) as exc:
        return _("{service} is not answering at {url} ({error})").format(
            service=service.name, url=url, error=getattr(exc, "reason", exc))
    if status == 200:
        return None
    return _("{service} is not ready: {url} answered {status}").format(
        service=service.name, url=url, status=status)


def answer_status(url: str, timeout: float = TIMEOUT_SECONDS, *, quiet: bool = True
                  ) -> int | None:
    """The HTTP status a GET of `url` (an http URL kansoku made) answers; None when
    nothing answers — or, with `quiet=False`, the error saying why (an `OSError`, or a
    `ValueError` for an answer that is not HTTP)."""
    try:
        return _status_of_get(url, timeout)
    except (OSError, ValueError):
        if quiet:
            return None
        raise


def _status_of_get(url: str, timeout: float) -> int:
    """GET `url` with HTTP/1.0 over a plain socket and read the answer's status line.

    A readiness check needs that number only: http.client or urllib.request would bring
    the email package and ssl, 15 ms of a check and of every `kansoku status` (which
    probes each component at once), and urllib would also send a loopback request
    through any proxy the environment names. `timeout` bounds the connection and each
    read."""
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise ValueError(f"not an http:// URL: {url}")
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    request = (f"GET {target} HTTP/1.0\r\nHost: {parts.netloc}\r\n"
               "Connection: close\r\n\r\n")
    with socket.create_connection((parts.hostname, parts.port or 80), timeout) as peer:
        peer.sendall(request.encode("ascii"))
        with peer.makefile("rb") as answer:
            status_line = answer.readline(256)
    version, _, rest = status_line.decode("latin-1").partition(" ")
    code = rest[:3]
    if not version.startswith("HTTP/") or not code.isdigit():
        raise ValueError(f"not an HTTP answer: {status_line[:60]!r}")
    return int(code)


def bad_port(variable: str, value: str) -> str:
    """What is wrong with a port variable that is not a number, as `kansoku serve` says
    it. (The settings module is imported only here: it costs more than a whole healthy
    check.)"""
    from kansoku.kit.settings import service_link_hint

    return service_link_hint(variable, value) or _(
        "{variable} is not valid: a port is a whole number — fix or unset it").format(
        variable=variable)


def main(argv: list[str]) -> int:
    """Check the service named in `argv` (or `KANSOKU_SERVICE`): 0 when ready, else 1
    (2 for no such service) with one line on stderr saying why, in the language of
    KANSOKU_LANG or LANG."""
    set_language(command_line_language(None, os.environ))
    try:
        service = service_named(argv[0] if argv else None)
    except UnknownService as exc:
        print(_("error: {message}").format(message=exc), file=sys.stderr)  # noqa: T201
        return 2
    problem = readiness_problem(service)
    if problem is not None:
        print(_("error: {message}").format(message=problem), file=sys.stderr)  # noqa: T201
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
