"""A chaos experiment as written in YAML, checked before anything runs.

An experiment states a **hypothesis** about the shop's steady state (probes that must all
hold: a health endpoint answers, a checkout pays, an error rate stays low), a **method**
that disturbs the shop (fault flags, stopping, killing or pausing a component, waiting),
and a **rollback** that puts it back. `runner.py` probes the hypothesis before, during and
after, and measures how long the shop takes to recover. The format is kansoku's own;
docs/chaos.md describes every field.

    title: Payments outage
    parameters: {outage: 20s}
    hypothesis:
      title: Customers can buy
      probes:
        - type: checkout
    method:
      - action: stop
        component: payments
      - action: wait
        for: ${outage}
    rollback:
      - action: start
        component: payments

The shipped experiments' own words — title, description, hypothesis and probe names —
are in the catalogs too (`scripts/messages` extracts them with `extract_shipped_texts`):
the command line shows them in the reader's language (`in_words`), the JSON as written.
An experiment someone writes is shown as they wrote it.

`${name}` is replaced by a parameter's value (its default, or `--param name=value`)
before the document is checked, so a shipped experiment's durations can be shortened.
A mistake is reported as one `ExperimentError` naming the file, the step and the field.

What a probe or a step is called in the report (`describe`) is a `Phrase`: people read it
in their language, the report's JSON in English.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    ValidationError,
    field_validator,
)

from kansoku import topology
from kansoku.faults import catalogue
from kansoku.kit.durations import format_duration, parse_duration
from kansoku.kit.flagkinds import OFF
from kansoku.kit.i18n import N_, Phrase, Words, _, gettext

#: The embedded infrastructure's component names, as `kansoku status` lists them (the
#: supervisor's `build_components`); the services come from `topology.SERVICES`.
INFRASTRUCTURE: tuple[str, ...] = ("postgresql", "nats", "valkey")
#: Every component an experiment may name.
COMPONENTS: tuple[str, ...] = (*INFRASTRUCTURE, *(s.name for s in topology.SERVICES))
#: The services that have RED figures in the explorer.
SERVICES: tuple[str, ...] = tuple(s.name for s in topology.SERVICES)

#: Where the shipped experiments are: `experiments/` beside this module (package data).
SHIPPED_FOLDER = "experiments"


class ExperimentError(ValueError):
    """An experiment that cannot be run; the message names where and how to fix it."""


def _duration(value: Any) -> float:
    return parse_duration(value, positive=True)


#: A length of time: `500ms`, `5s`, `2m`, or a number of seconds.
Duration = Annotated[float, BeforeValidator(_duration)]


def _component(name: str) -> str:
    if name not in COMPONENTS:
        raise ValueError(_("there is no component '{name}' — choose one of: {names}").format(
            name=name, names=", ".join(COMPONENTS)))
    return name


def _service(name: str) -> str:
    if name not in SERVICES:
        raise ValueError(_("there is no service '{service}' — choose one of: {choices}").format(
            service=name, choices=", ".join(SERVICES)))
    return name


Component = Annotated[str, BeforeValidator(lambda value: _component(str(value)))]
Service = Annotated[str, BeforeValidator(lambda value: _service(str(value)))]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


# --- probes -----------------------------------------------------------------------------


class _Probe(_Model):
    #: What the report calls the probe; a description of it when not given.
    name: str | None = None

    @property
    def label(self) -> Words:
        # A name is looked up in the catalogs (a shipped experiment's is there).
        return Phrase(self.name) if self.name else self.describe()

    def describe(self) -> Phrase:
        raise NotImplementedError


class ReadyProbe(_Probe):
    """A component is ready: a service's `/health/ready` answers 200 (its own
    dependencies are up); PostgreSQL, NATS or Valkey accepts a connection."""

    type: Literal["ready"]
    component: Component
    timeout: Duration = 3.0

    def describe(self) -> Phrase:
        return Phrase(N_("{component} is ready"), component=self.component)


class HttpProbe(_Probe):
    """One HTTP request to a service of the stack answers with an expected status
    (and, with `max_seconds`, in time)."""

    type: Literal["http"]
    component: Component = "gateway"
    path: str = Field("/health/ready", pattern=r"^/")
    method: Literal["GET", "HEAD"] = "GET"
    status: list[int] = Field(default_factory=lambda: [200])
    max_seconds: Duration | None = None
    timeout: Duration = 5.0

    @field_validator("status", mode="before")
    @classmethod
    def _one_or_more(cls, value: Any) -> Any:
        return [value] if isinstance(value, int) else value

    @field_validator("component")
    @classmethod
    def _serves_http(cls, component: str) -> str:
        if component in INFRASTRUCTURE:
            raise ValueError(_("{component} does not speak HTTP — use a 'ready' probe, or "
                               "one of: {services}").format(component=component,
                                                            services=", ".join(SERVICES)))
        return component

    def describe(self) -> Phrase:
        request = {"method": self.method, "component": self.component, "path": self.path,
                   "status": "/".join(str(status) for status in self.status)}
        if self.max_seconds:
            return Phrase(N_("{method} {component} {path} answers {status} within {limit}"),
                          **request, limit=format_duration(self.max_seconds))
        return Phrase(N_("{method} {component} {path} answers {status}"), **request)


class CheckoutProbe(_Probe):
    """A customer buys: through the public API, as an account the run registers, an
    order of one unit of a product in stock is placed and paid with the test card
    that pays."""

    type: Literal["checkout"]
    #: Bound on each request of the checkout.
    timeout: Duration = 10.0
    #: The whole checkout must take at most this long.
    max_seconds: Duration | None = None

    def describe(self) -> Phrase:
        if self.max_seconds:
            return Phrase(N_("a checkout is paid within {limit}"),
                          limit=format_duration(self.max_seconds))
        return Phrase(N_("a checkout is paid"))


class _RedProbe(_Probe):
    """A figure from the explorer's RED data (server and consumer spans) over the last
    `window`. While the shop recovers, the window starts no earlier than the end of
    the rollback, so errors of the outage itself do not count against the recovery."""

    service: Service
    #: One route of the service (as the explorer's Services page names it, e.g.
    #: `/charges`); all of them when not given.
    route: str | None = None
    window: Duration = 30.0
    #: With fewer requests than this in the window the probe does not hold.
    min_requests: int = Field(0, ge=0)

    def _scope(self) -> str:
        route = f" {self.route}" if self.route else ""
        return f"{self.service}{route}"


class ErrorRateProbe(_RedProbe):
    type: Literal["error-rate"]
    max_percent: float = Field(ge=0, le=100)

    def describe(self) -> Phrase:
        return Phrase(N_("{scope} error rate ≤ {percent}% over {window}"),
                      scope=self._scope(), percent=f"{self.max_percent:g}",
                      window=format_duration(self.window))


class LatencyProbe(_RedProbe):
    type: Literal["latency"]
    #: The 95th percentile of the requests' durations must stay at or under this.
    max_p95: Duration

    def describe(self) -> Phrase:
        return Phrase(N_("{scope} p95 ≤ {limit} over {window}"), scope=self._scope(),
                      limit=format_duration(self.max_p95), window=format_duration(self.window))


Probe = Annotated[ReadyProbe | HttpProbe | CheckoutProbe | ErrorRateProbe | LatencyProbe,
                  Discriminator("type")]
PROBE_TYPES: tuple[str, ...] = ("ready", "http", "checkout", "error-rate", "latency")


class Hypothesis(_Model):
    """What "the shop is fine" means here: every probe holds."""

    title: str
    probes: list[Probe] = Field(min_length=1)


# --- actions ----------------------------------------------------------------------------


def _variant_text(value: Any) -> Any:
    # YAML 1.1 reads a bare on/off as true/false: take them back as the variant names.
    if isinstance(value, bool):
        return "on" if value else OFF
    return value


class SetFlag(_Model):
    """Switch a fault flag to a variant (`off` turns it off)."""

    action: Literal["set-flag"]
    flag: str
    variant: Annotated[str, BeforeValidator(_variant_text)]

    @field_validator("flag")
    @classmethod
    def _known_flag(cls, name: str) -> str:
        return catalogue.flag_definition(name).name

    @field_validator("variant")
    @classmethod
    def _known_variant(cls, variant: str, info: Any) -> str:
        name = info.data.get("flag")
        if name is None:  # the flag itself was wrong: that error is the one to show
            return variant
        return catalogue.canonical_variant(catalogue.FLAGS[name], variant)

    def describe(self) -> Phrase:
        return Phrase(N_("set-flag {flag}={variant}"), flag=self.flag, variant=self.variant)


class Stop(_Model):
    """Stop a component through the supervisor and keep it stopped (`kansoku stop`)."""

    action: Literal["stop"]
    component: Component

    def describe(self) -> Phrase:
        return Phrase(N_("stop {component}"), component=self.component)


class Start(_Model):
    """Start a stopped component and wait until it is ready (`kansoku start`)."""

    action: Literal["start"]
    component: Component

    def describe(self) -> Phrase:
        return Phrase(N_("start {component}"), component=self.component)


class Kill(_Model):
    """SIGKILL the component's process, as a crash: the supervisor restarts it."""

    action: Literal["kill"]
    component: Component

    def describe(self) -> Phrase:
        return Phrase(N_("kill {component}"), component=self.component)


class Pause(_Model):
    """Freeze the component's processes (SIGSTOP) for `for`, then let them go on
    (SIGCONT): a process that hangs without exiting, so nothing restarts it."""

    action: Literal["pause"]
    component: Component
    for_: Duration = Field(alias="for")

    def describe(self) -> Phrase:
        return Phrase(N_("pause {component} for {duration}"), component=self.component,
                      duration=format_duration(self.for_))


class Wait(_Model):
    """Let the disturbance act for a while (the hypothesis is probed meanwhile)."""

    action: Literal["wait"]
    for_: Duration = Field(alias="for")

    def describe(self) -> Phrase:
        return Phrase(N_("wait {duration}"), duration=format_duration(self.for_))


Action = Annotated[SetFlag | Stop | Start | Kill | Pause | Wait, Discriminator("action")]
ACTION_NAMES: tuple[str, ...] = ("set-flag", "stop", "start", "kill", "pause", "wait")


# --- the experiment ---------------------------------------------------------------------


class Experiment(_Model):
    title: str
    description: str = ""
    #: Values `${name}` stands for (their defaults), for the report and `chaos list`.
    parameters: dict[str, str | int | float] = Field(default_factory=dict)
    hypothesis: Hypothesis
    method: list[Action] = Field(min_length=1)
    rollback: list[Action] = Field(default_factory=list)
    #: How often the hypothesis is probed while the method runs and while recovering.
    probe_interval: Duration = 1.0
    #: Whether to probe while the method runs (to see the hypothesis deviate).
    probe_during_method: bool = True
    #: How long after the rollback the hypothesis may take to hold again.
    recovery_timeout: Duration = 60.0

    #: Where it was read from (not part of the YAML).
    source: str = Field("", exclude=True)

    @field_validator("parameters")
    @classmethod
    def _parameter_names(cls, parameters: dict[str, Any]) -> dict[str, Any]:
        for name in parameters:
            if not _PARAMETER_NAME.fullmatch(name):
                raise ValueError(_("parameter name '{name}' must be letters, digits and "
                                   "_").format(name=name))
        return parameters


# --- reading ----------------------------------------------------------------------------

_PARAMETER_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_REFERENCE = re.compile(r"\$\{([^}]*)\}")


def in_words(text: str) -> str:
    """An experiment's own text (its title, description, hypothesis) as the command line
    shows it: on one line, in the reader's language when it is a shipped experiment's."""
    one_line = " ".join(text.split())
    return gettext(one_line)


def readable_texts(document: Any) -> list[str]:
    """The texts of an experiment document that people read, as `in_words` looks them
    up: title, description, hypothesis title and probe names."""
    if not isinstance(document, dict):
        return []
    hypothesis = document.get("hypothesis")
    hypothesis = hypothesis if isinstance(hypothesis, dict) else {}
    probes = hypothesis.get("probes")
    probes = probes if isinstance(probes, list) else []
    texts = [document.get("title"), document.get("description"), hypothesis.get("title"),
             *(probe.get("name") for probe in probes if isinstance(probe, dict))]
    return [" ".join(text.split()) for text in texts if isinstance(text, str) and text.strip()]


def extract_shipped_texts(fileobj: Any, keywords: Any, comment_tags: Any, options: Any
                          ) -> Iterator[tuple[int, str, str, list[str]]]:
    """Babel's extraction method for the shipped experiments (babel.cfg): their texts
    people read, for the catalogs."""
    for text in readable_texts(yaml.safe_load(fileobj.read().decode("utf-8"))):
        yield 1, "gettext", text, []


def shipped() -> dict[str, str]:
    """The shipped experiments: name (the file's stem) -> YAML text, sorted by name."""
    folder = resources.files("kansoku.chaos") / SHIPPED_FOLDER
    found = {entry.name.removesuffix(".yaml"): entry.read_text("utf-8")
             for entry in folder.iterdir() if entry.name.endswith(".yaml")}
    return dict(sorted(found.items()))


def load(name_or_path: str, overrides: dict[str, str] | None = None) -> Experiment:
    """A shipped experiment by name (`payments-outage`) or a YAML file by path, with
    `overrides` for its parameters. Raises `ExperimentError`."""
    path = Path(name_or_path).expanduser()
    looks_like_a_file = path.suffix in (".yaml", ".yml") or "/" in name_or_path
    experiments = shipped()
    if not looks_like_a_file and name_or_path in experiments:
        return parse(experiments[name_or_path], f"{name_or_path} (shipped)", overrides)
    if path.is_file():
        try:
            text = path.read_text("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ExperimentError(_("{path}: cannot be read ({error})").format(
                path=path, error=exc)) from exc
        return parse(text, str(path), overrides)
    if looks_like_a_file or path.exists():
        problem = (_("{path} is not a file — give a YAML file, or a shipped experiment: "
                     "{shipped}") if path.exists() else
                   _("{path} does not exist — give a YAML file, or a shipped experiment: "
                     "{shipped}"))
        raise ExperimentError(problem.format(path=path, shipped=", ".join(experiments)))
    raise ExperimentError(_("there is no experiment '{name}' — shipped: {shipped} ('kansoku "
                            "chaos list'), or give the path of a YAML file").format(
        name=name_or_path, shipped=", ".join(experiments)))


def parse(text: str, source: str, overrides: dict[str, str] | None = None) -> Experiment:
    """An experiment document (YAML) checked; `source` names it in errors."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        detail = " ".join(str(exc).split())
        raise ExperimentError(_("{source}: not valid YAML: {detail}").format(
            source=source, detail=detail)) from exc
    if not isinstance(document, dict):
        raise ExperimentError(_("{source}: expected a mapping with title:, hypothesis:, "
                                "method: and rollback: — see docs/chaos.md").format(
            source=source))
    if "source" in document:  # set from where it was read, never written
        raise ExperimentError(_("{source}: field 'source': not a field of an experiment — "
                                "see docs/chaos.md").format(source=source))
    parameters = document.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise ExperimentError(_("{source}: field 'parameters': must be a mapping of names "
                                "to values, e.g. {example}").format(
            source=source, example="{outage: 20s}"))
    parameters = {str(name): value for name, value in parameters.items()}
    for name, value in (overrides or {}).items():
        if name not in parameters:
            raise ExperimentError(_("{source}: no parameter '{name}' to set — its "
                                    "parameters: {known}").format(
                source=source, name=name, known=", ".join(parameters) or _("none")))
        parameters[name] = value
    document = {key: value if key == "parameters" else
                _substitute(value, parameters, source, key)
                for key, value in document.items()}
    document["parameters"] = parameters
    try:
        experiment = Experiment.model_validate(document)
    except ValidationError as exc:
        raise ExperimentError(f"{source}: {_describe(exc, document)}") from exc
    return experiment.model_copy(update={"source": source})


def _substitute(value: Any, parameters: dict[str, Any], source: str, where: str) -> Any:
    """`value` with every `${name}` replaced; a value that is only `${name}` takes the
    parameter's value as it is (a number stays a number)."""
    if isinstance(value, dict):
        return {key: _substitute(item, parameters, source, f"{where}.{key}")
                for key, item in value.items()}
    if isinstance(value, list):
        return [_substitute(item, parameters, source, f"{where}[{index}]")
                for index, item in enumerate(value)]
    if not isinstance(value, str) or "${" not in value:
        return value

    def lookup(match: re.Match[str]) -> Any:
        name = match.group(1).strip()
        if name not in parameters:
            known = ", ".join(parameters) or _("none (add a parameters: mapping)")
            raise ExperimentError(_("{source}: field '{where}': unknown parameter "
                                    "'{reference}' — parameters: {known}").format(
                source=source, where=where, reference=f"${{{name}}}", known=known))
        return parameters[name]

    whole = _REFERENCE.fullmatch(value.strip())
    if whole:
        return lookup(whole)
    return _REFERENCE.sub(lambda match: str(lookup(match)), value)


def _describe(exc: ValidationError, document: dict[str, Any]) -> str:
    """The first error as `method[1] (stop), field 'component': message`."""
    error = exc.errors()[0]
    location: list[Any] = list(error["loc"])
    message = str(error["msg"]).removeprefix("Value error, ")
    where: list[str] = []
    rest: list[Any] = location
    # A step of the method or rollback, or a probe: name it by its index and kind.
    if location[:1] in (["method"], ["rollback"]) or location[:2] == ["hypothesis", "probes"]:
        section = "hypothesis.probes" if location[0] == "hypothesis" else location[0]
        depth = 2 if location[0] == "hypothesis" else 1
        tag_field = "type" if location[0] == "hypothesis" else "action"
        kinds = PROBE_TYPES if location[0] == "hypothesis" else ACTION_NAMES
        if len(location) > depth and isinstance(location[depth], int):
            index = location[depth]
            hypothesis = document.get("hypothesis")
            entries = document.get(location[0]) if location[0] != "hypothesis" else \
                hypothesis.get("probes") if isinstance(hypothesis, dict) else None
            entry = entries[index] if isinstance(entries, list) and index < len(entries) \
                else None
            kind = entry.get(tag_field) if isinstance(entry, dict) else None
            where.append(f"{section}[{index}]" + (f" ({kind})" if kind else ""))
            rest = location[depth + 1:]
            if rest and rest[0] in kinds:
                rest = rest[1:]  # the kind pydantic chose, not a field
            if error["type"] in ("union_tag_invalid", "union_tag_not_found"):
                return _("{where}, field '{field}': must be one of {kinds}").format(
                    where=where[0], field=tag_field, kinds=", ".join(kinds))
    if error["type"] == "extra_forbidden":
        if where:
            message = (_("not a field of a probe — see docs/chaos.md")
                       if location[0] == "hypothesis" else
                       _("not a field of a step — see docs/chaos.md"))
        elif len(location) == 1:
            message = _("not a field of an experiment — see docs/chaos.md")
        else:
            message = _("not a field of '{section}' — see docs/chaos.md").format(
                section=location[0])
    elif error["type"] == "missing":
        message = _("missing — it is required")
    field = ".".join(str(part) for part in rest).replace("for_", "for") or None
    parts = [*where, _("field '{field}'").format(field=field) if field else ""]
    return f"{', '.join(part for part in parts if part)}: {message}"
