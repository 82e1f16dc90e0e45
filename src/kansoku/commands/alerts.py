"""`kansoku alerts …`: the alert rules and SLOs (see docs/alerts.md).

- `init` writes the packaged defaults to `<data dir>/alerts.yaml`, to edit;
- `check [FILE]` checks a rules file (the data directory's by default) and says what is
  wrong in one line;
- `list` shows the running explorer's alerts;
- `export DIR` writes the same rules for distributed mode: Prometheus rules, a
  Prometheus configuration that loads them and scrapes the services where they run
  (the running stack's ports, else the settings'), and an Alertmanager configuration.

The rules, YAML and the HTTP client are imported inside the commands: every `kansoku`
command imports this module.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import urlsplit

import typer
from rich.table import Table

from kansoku.commands.common import DataDir, console, fail, load_settings, print_table
from kansoku.commands.typer_texts import TranslatedTyper
from kansoku.kit.i18n import _, current_language
from kansoku.topology import EXPLORER_TOKEN_VARIABLE, SERVICES, explorer_headers

if TYPE_CHECKING:
    from kansoku.explorer.alerts.rules import RuleFile
    from kansoku.stack.settings import StackSettings

app = TranslatedTyper(help=_("The alert rules and SLOs."), no_args_is_help=True)

RulesOption = Annotated[Path | None, typer.Option(
    "--rules", help=_("A rules file [default: `<data dir>/alerts.yaml`, else the packaged "
                      "defaults]"), show_default=False)]


def _say(line: str) -> None:
    """One line of output, never wrapped: a path broken over two lines cannot be
    copied (rich wraps at 80 columns when the output is not a terminal)."""
    console.print(line, highlight=False, soft_wrap=True)


def _rules_path(data_dir: Path | None) -> Path:
    return load_settings(data_dir).data_dir / "alerts.yaml"


def _load(path: Path | None, data_dir: Path | None) -> tuple[RuleFile, str]:
    from kansoku.explorer.alerts.rules import RulesError, load_rules

    chosen = path or _rules_path(data_dir)
    if path is not None and not path.exists():
        fail(_("{path} does not exist: give an existing rules file, or leave --rules out "
               "for the data directory's (or the defaults)").format(path=path))
    try:
        return load_rules(chosen), (str(chosen) if chosen.exists()
                                    else _("the packaged defaults"))
    except RulesError as exc:
        fail(_("{error} — fix the file and run `kansoku alerts check` again").format(
            error=exc))


@app.command("init", help=_("Write the default rules to `<data dir>/alerts.yaml`, to edit; "
                            "the explorer reads the file instead of its defaults and picks "
                            "up changes by itself."))
def init(data_dir: DataDir = None,
         force: Annotated[bool, typer.Option(help=_("Overwrite an existing file"))] = False,
         ) -> None:
    from kansoku.explorer.alerts.rules import default_rules_text

    path = _rules_path(data_dir)
    if path.exists() and not force:
        fail(_("{path} exists already: edit it, or run with --force to start again from "
               "the defaults").format(path=path))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(default_rules_text(), encoding="utf-8")
    _say(_("Wrote the default rules to {path}.").format(path=path))


@app.command("check", help=_("Check a rules file: one line saying what is wrong, or what it "
                             "holds."))
def check(file: Annotated[Path | None, typer.Argument(
              help=_("The rules file [default: `<data dir>/alerts.yaml`]"),
              show_default=False)] = None,
          data_dir: DataDir = None) -> None:
    rules, source = _load(file, data_dir)
    _say(_("{source}: {rules} rules, {slos} SLOs, {receivers} receivers — OK").format(
        source=source, rules=len(rules.rules), slos=len(rules.slos),
        receivers=len(rules.notifications.receivers)))


@app.command("list", help=_("The running explorer's alerts: firing, pending, lately "
                            "resolved."))
def list_alerts(data_dir: DataDir = None) -> None:
    import httpx

    url = load_settings(data_dir).service_url("explorer")
    try:
        # The summaries and resolutions in the command line's language.
        answer = httpx.get(f"{url}/api/alerts", timeout=10, headers={
            **explorer_headers(os.environ.get(EXPLORER_TOKEN_VARIABLE)),
            "Accept-Language": str(current_language())})
        answer.raise_for_status()
    except httpx.HTTPError as exc:
        fail(_("the explorer at {url} did not answer ({error}): start the stack with "
               "`kansoku up`").format(url=url, error=exc))
    found: list[dict[str, Any]] = answer.json()["data"]
    if not found:
        _say(_("No alerts: all quiet."))
        return
    table = Table(_("State"), _("Alert"), _("Service"), _("Value"), _("Summary"))
    for alert in found:
        resolution = alert.get("resolution")
        table.add_row(alert["state"], alert["name"], alert["service"] or "",
                      alert["value_text"] or "",
                      alert["summary"] + "\n" + _("Resolved: {resolution}").format(
                          resolution=resolution) if resolution else alert["summary"])
    print_table(table)


def _scrape_targets(settings: StackSettings, host: str | None) -> tuple[dict[str, str], str]:
    """Where each service's `/metrics` is ("host:port" by service name), and where that
    came from, in words: the running stack's state file, else the settings (the
    KANSOKU_<NAME>_PORT variables, else the default ports). `host` replaces the host."""
    from kansoku.kit.settings import ConfigurationError
    from kansoku.stack.state import StackNotRunning, read_stack_state

    try:
        state = read_stack_state(settings)
    except StackNotRunning as exc:
        fail(str(exc))
    targets: dict[str, str] = {}
    if state is not None and state.supervisor_alive():
        origin = _("the stack running from {path}").format(path=settings.data_dir)
        for service in SERVICES:
            component = state.component(service.name)
            address = urlsplit(component.url) if component else None
            if address is None or address.hostname is None or address.port is None:
                fail(_("the stack's state file ({path}) has no address for {service}: "
                       "restart the stack with the kansoku that exports").format(
                           path=settings.state_file, service=service.name))
            targets[service.name] = f"{host or address.hostname}:{address.port}"
    else:
        origin = _("the settings, as no stack runs from {path} (KANSOKU_<NAME>_PORT, else "
                   "the default ports)").format(path=settings.data_dir)
        try:
            targets = {service.name: f"{host or settings.connect_host}:"
                                     f"{settings.service_port(service.name)}"
                       for service in SERVICES}
        except ConfigurationError as exc:
            fail(str(exc))
    return targets, origin


@app.command("export", help=_(
    "Write the rules for distributed mode: kansoku-rules.yml (Prometheus recording and "
    "alerting rules), prometheus.yml (scrapes every service, loads the rules) and "
    "alertmanager.yml (the receivers, grouping and repeat interval).\n\n"
    "The services' ports are the running stack's (from its state file); without a running "
    "stack, those the settings give (`KANSOKU_<NAME>_PORT`, else the defaults)."))
def export(directory: Annotated[Path, typer.Argument(help=_("Where to write the files"))],
           rules_file: RulesOption = None, data_dir: DataDir = None,
           host: Annotated[str | None, typer.Option(
               help=_("The host Prometheus reaches the services at [default: the one they "
                      "listen on]"), show_default=False)] = None,
           alertmanager: Annotated[str, typer.Option(
               help=_("Alertmanager's host:port"))] = "127.0.0.1:9093",
           smtp: Annotated[str | None, typer.Option(
               help=_("SMTP server (host:port) for e-mail receivers without one [default: "
                      "the stack's mailbox]"), show_default=False)] = None,
           ) -> None:
    import yaml

    from kansoku.explorer.alerts import prometheus

    rules, source = _load(rules_file, data_dir)
    settings = load_settings(data_dir)
    targets, origin = _scrape_targets(settings, host)
    mailbox = smtp or f"{host or settings.connect_host}:{settings.worker_smtp_port}"
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        fail(_("cannot create {path} ({error}): choose a writable directory").format(
            path=directory, error=exc.strerror))
    files = {
        prometheus.RULES_FILE: prometheus.prometheus_rules(rules),
        "prometheus.yml": prometheus.prometheus_config(targets, alertmanager=alertmanager),
        "alertmanager.yml": prometheus.alertmanager_config(rules, smtp=mailbox),
    }
    header = (f"# Written by `kansoku alerts export` from {source}; see docs/alerts.md.\n"
              f"# Services' addresses from {origin}.\n")
    for name, document in files.items():
        (directory / name).write_text(
            header + yaml.safe_dump(document, sort_keys=False, width=100), encoding="utf-8")
    _say(_("Wrote {files} to {path} (rules from {source}).").format(
        files=", ".join(files), path=directory, source=source))
    _say(_("Scrape targets, from {origin}: {targets}.").format(
        origin=origin, targets=", ".join(f"{name} {target}"
                                         for name, target in targets.items())))
    _say(_("E-mail without a server of its own goes to {mailbox}; alerts to Alertmanager "
           "at {alertmanager}.").format(mailbox=mailbox, alertmanager=alertmanager))
