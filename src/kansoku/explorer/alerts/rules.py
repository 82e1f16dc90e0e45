"""The alert rules file: what to watch, when to alert, whom to tell (docs/alerts.md).

One YAML document with three parts:

- `rules`: alert rules, each of one `kind` (error rate, latency, saturation, synthetic
  failure, dead letters, queue lag, SLO burn rate), with its window, threshold, `for`
  duration, labels and a summary that says what it means and where to look;
- `slos`: service level objectives for the key journeys (availability or latency of some
  operations of a service, over a window; `slos.models.SLO`), which the burn-rate rules
  and the SLOs page read;
- `notifications`: receivers (webhooks, e-mail), grouping and the repeat interval.

The explorer ships defaults (`alerts.default.yaml`, beside this module); a user's file
(`KANSOKU_EXPLORER_ALERTS_FILE`, `<data dir>/alerts.yaml` under `kansoku up`) replaces
them whole. `load_rules` reads and checks a file: anything wrong is one `RulesError`
naming the file, the rule and the field.

The packaged defaults' summaries and SLO descriptions are kansoku's words, so the
catalogs hold them in Japanese too (`extract_packaged_texts` is how scripts/messages
finds them): a reader gets them in their language (`in_readers_language`). A user's own
file says what its author wrote, in whatever language, and is shown as written. The
English stays in one place, this YAML, which `kansoku alerts init` copies and the
Prometheus export reads; the Japanese in one place, the catalog, beside every other
translation and held to it by tests/kit/test_i18n.py — rather than a second `ja:` field
in the YAML that the catalogs' checks would not see.
"""

from __future__ import annotations

import re
import string
from collections.abc import Collection, Iterator
from functools import cache
from importlib import resources
from pathlib import Path
from typing import IO, Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from kansoku.explorer.alerts.models import (
    NotificationsInUse,
    RuleKind,
    RuleOverview,
    SaturationResource,
)
from kansoku.explorer.common.time import Duration
from kansoku.explorer.slos.models import SLO
from kansoku.kit import i18n

DEFAULT_RULES_RESOURCE = "alerts.default.yaml"
#: Where the rules in use come from when no rules file is read (`RulesInUse.source`).
PACKAGED_DEFAULTS = "(packaged defaults)"

#: Names Prometheus accepts as an alert name or a label name.
_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


# --- rules ---------------------------------------------------------------------------


class _Rule(_Model):
    name: str = Field(pattern=_NAME, description="The alert's name, e.g. HighErrorRate")
    #: How long the condition must hold before the alert fires (pending until then).
    for_: Duration = Field(0.0, alias="for")
    #: Labels every alert of the rule carries (`severity` at least, by convention).
    labels: dict[str, str] = Field(default_factory=dict)
    #: What it means and where to look. `{service}` and the other labels, `{value}`,
    #: `{threshold}` and `{window}` are filled in.
    summary: str = ""

    @field_validator("summary")
    @classmethod
    def _placeholders(cls, summary: str) -> str:
        try:
            names = [name for _, name, _, _ in string.Formatter().parse(summary) if name]
        except ValueError as exc:
            raise ValueError(f"{exc} (write {{{{ and }}}} for a brace)") from exc
        for name in names:
            if not re.match(_NAME, name):
                raise ValueError(f"'{{{name}}}' is not a placeholder: use a label name, "
                                 "{value}, {threshold} or {window}")
        return summary

    @field_validator("labels")
    @classmethod
    def _label_names(cls, labels: dict[str, str]) -> dict[str, str]:
        for key in labels:
            if not re.match(_NAME, key):
                raise ValueError(f"label name '{key}' must be letters, digits and _")
        return labels

    @property
    def severity(self) -> str:
        return self.labels.get("severity", "warning")


GroupName = Literal["service", "route"]
GroupBy = list[GroupName]


class _RequestRule(_Rule):
    """A rule over requests: server spans, grouped by service (and route)."""

    window: Duration = 120.0
    min_requests: int = Field(20, ge=1)
    group_by: GroupBy = Field(default_factory=lambda: list[GroupName](["service"]))
    #: Only these services (empty: all), and never these.
    services: list[str] = Field(default_factory=list)
    exclude_services: list[str] = Field(default_factory=list)
    #: Routes left out, as patterns where * stands for anything: "/api/v1/lab/*".
    exclude_routes: list[str] = Field(default_factory=list)

    @field_validator("group_by")
    @classmethod
    def _service_first(cls, group_by: list[str]) -> list[str]:
        if "service" not in group_by:
            raise ValueError("group_by needs service (and may add route)")
        return group_by


class ErrorRateRule(_RequestRule):
    """The share of a service's requests (server spans) that failed — error status or
    HTTP 5xx — over the window."""

    kind: Literal[RuleKind.ERROR_RATE]
    #: A share: 0.05 is 5 %.
    threshold: float = Field(0.05, gt=0, le=1)
    #: Fewer failures than this in the window never fire (nor fewer requests than
    #: `min_requests`): a quiet service with one failed request is not an incident.
    min_errors: int = Field(5, ge=1)


class LatencyRule(_RequestRule):
    """A percentile of a service's (or route's) request duration over the window."""

    kind: Literal[RuleKind.LATENCY]
    percentile: float = Field(95.0, gt=0, lt=100)
    #: Fires above this duration, e.g. 1500ms.
    threshold: Duration = 2.0
    #: Server spans, or the `http.server.request.duration` histogram (coarser: its
    #: buckets; what the Prometheus export uses).
    source: Literal["spans", "histogram"] = "spans"


#: Each saturation resource: the metric it reads, the attributes it keeps, the unit of
#: its threshold.
SATURATION_RESOURCES: dict[SaturationResource, tuple[str, dict[str, str], str]] = {
    SaturationResource.CPU: ("process.cpu.utilization", {}, "cores"),
    SaturationResource.MEMORY: ("process.memory.usage", {}, "MiB"),
    SaturationResource.DB_POOL: ("db.client.connections.usage", {"state": "used"},
                                 "connections"),
}


class SaturationRule(_Rule):
    """A process's CPU (cores busy), memory (MiB resident) or database pool
    (connections in use), averaged over the window."""

    kind: Literal[RuleKind.SATURATION]
    resource: SaturationResource
    window: Duration = 120.0
    threshold: float = Field(gt=0)
    #: Only these services (empty: all), and never these.
    services: list[str] = Field(default_factory=list)
    exclude_services: list[str] = Field(default_factory=list)


class SyntheticFailureRule(_Rule):
    """Failed runs of a synthetic monitor's journey within the window."""

    kind: Literal[RuleKind.SYNTHETIC_FAILURE]
    window: Duration = 180.0
    #: Fires with at least this many failed runs.
    threshold: float = Field(2, gt=0)


class DeadLetterRule(_Rule):
    """Messages moved to the dead-letter stream within the window."""

    kind: Literal[RuleKind.DEAD_LETTERS]
    window: Duration = 300.0
    #: Fires with more than this many.
    threshold: float = Field(0, ge=0)


class QueueLagRule(_Rule):
    """Messages waiting for a consumer (the latest value in the window)."""

    kind: Literal[RuleKind.QUEUE_LAG]
    window: Duration = 60.0
    #: Fires with more than this many waiting.
    threshold: float = Field(50, ge=0)


class BurnPair(_Model):
    """One of the SRE workbook's window pairs: fires when the error budget burns at
    least `factor` times as fast as the SLO allows over both windows."""

    long: Duration
    short: Duration
    factor: float = Field(gt=0)
    severity: str = "critical"

    @model_validator(mode="after")
    def _short_is_shorter(self) -> BurnPair:
        if not 0 < self.short < self.long:
            raise ValueError("short must be shorter than long (and above zero)")
        return self


#: The SRE workbook's multi-window, multi-burn-rate alerts for a 30-day SLO: 2 % of the
#: budget in an hour, 5 % in six hours (page), 10 % in three days (ticket).
WORKBOOK_PAIRS = (
    BurnPair(long=3600, short=300, factor=14.4, severity="critical"),
    BurnPair(long=6 * 3600, short=1800, factor=6, severity="critical"),
    BurnPair(long=3 * 86400, short=6 * 3600, factor=1, severity="warning"),
)


class BurnRateRule(_Rule):
    """An SLO's error budget burning too fast, in both windows of a pair."""

    kind: Literal[RuleKind.SLO_BURN_RATE]
    #: The SLO it watches; unset: every SLO of the file.
    slo: str | None = None
    pairs: list[BurnPair] = Field(default_factory=lambda: list(WORKBOOK_PAIRS), min_length=1)
    #: Requests the short window needs at least.
    min_requests: int = Field(20, ge=1)


Rule = Annotated[ErrorRateRule | LatencyRule | SaturationRule | SyntheticFailureRule
                 | DeadLetterRule | QueueLagRule | BurnRateRule, Field(discriminator="kind")]
RULE_KINDS = tuple(RuleKind)


# --- notifications ---------------------------------------------------------------------


class Webhook(_Model):
    url: str = Field(pattern=r"^https?://")


class Email(_Model):
    to: list[str] = Field(min_length=1)
    from_: str = Field("kansoku-alerts@kansoku.local", alias="from")
    #: The SMTP server; unset, the stack's mailbox (KANSOKU_HOST, KANSOKU_WORKER_SMTP_PORT).
    host: str | None = None
    port: int | None = Field(None, ge=1, le=65535)


class Receiver(_Model):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    webhook: Webhook | None = None
    email: Email | None = None
    #: Only alerts with these label values (empty: every alert).
    match: dict[str, str] = Field(default_factory=dict)
    send_resolved: bool = True

    @model_validator(mode="after")
    def _one_target(self) -> Receiver:
        if (self.webhook is None) == (self.email is None):
            raise ValueError("a receiver has exactly one of webhook: or email:")
        return self


class Notifications(_Model):
    #: Alerts with the same values of these labels go out in one notification.
    group_by: list[str] = Field(default_factory=lambda: ["service"])
    #: A group's notifications are at least this far apart (news waits, then goes
    #: out together).
    group_interval: Duration = 30.0
    #: A group still firing is notified again after this long, not before.
    repeat_interval: Duration = 4 * 3600.0
    receivers: list[Receiver] = Field(default_factory=list)


# --- the file --------------------------------------------------------------------------


class RuleFile(_Model):
    rules: list[Rule] = Field(default_factory=list)
    slos: list[SLO] = Field(default_factory=list)
    notifications: Notifications = Field(default_factory=Notifications)

    @model_validator(mode="after")
    def _consistent(self) -> RuleFile:
        for kind, names in (("rule", [r.name for r in self.rules]),
                            ("SLO", [s.name for s in self.slos]),
                            ("receiver", [r.name for r in self.notifications.receivers])):
            seen: set[str] = set()
            for name in names:
                if name in seen:
                    raise ValueError(f"two {kind}s are named '{name}'")
                seen.add(name)
        known = {slo.name for slo in self.slos}
        for rule in self.rules:
            if isinstance(rule, BurnRateRule) and rule.slo and rule.slo not in known:
                raise ValueError(f"rule '{rule.name}' watches SLO '{rule.slo}', which the "
                                 f"file does not define (it has: {', '.join(known) or 'none'})")
        return self

    def slos_of(self, rule: BurnRateRule) -> list[SLO]:
        return [slo for slo in self.slos if rule.slo in (None, slo.name)]


class RulesInUse(BaseModel):
    """What `/api/alerts/rules` answers: the rules in use and where they come from."""

    source: str = Field(description="The rules file, or (packaged defaults)")
    packaged: bool = Field(description="Whether the rules in use are the packaged defaults")
    load_error: str | None = Field(description="The last error reading the rules file "
                                               "(the previous rules stay in use)")
    rule_errors: dict[str, str] = Field(description="Rules whose last evaluation failed")
    overview: list[RuleOverview] = Field(description="Every rule with its state now and "
                                                     "its condition in words, in file order")
    rules: list[Rule]
    slos: list[SLO]
    notifications: NotificationsInUse


class RulesError(ValueError):
    """A rules file that cannot be used; the message names the file, rule and field."""


def default_rules_text() -> str:
    return (resources.files("kansoku.explorer.alerts") / DEFAULT_RULES_RESOURCE).read_text("utf-8")


@cache
def packaged_texts() -> frozenset[str]:
    """The packaged default rules' summaries and SLO descriptions, word for word: the
    texts of the rules files that the catalogs translate."""
    defaults = parse_rules(default_rules_text(), f"(packaged) {DEFAULT_RULES_RESOURCE}")
    return frozenset([rule.summary for rule in defaults.rules if rule.summary]
                     + [slo.description for slo in defaults.slos if slo.description])


def in_language(text: str, language: i18n.Language) -> str:
    """A rules file's `text` (a summary, an SLO's description) in `language` when it is
    the packaged defaults' own; any other text as its author wrote it."""
    return i18n.translated_in(language, text) if text in packaged_texts() else text


def in_readers_language(text: str) -> str:
    """`in_language` for the current reader (the request's language)."""
    return in_language(text, i18n.current_language())


def extract_packaged_texts(fileobj: IO[bytes], keywords: Collection[str],
                           comment_tags: Collection[str], options: dict[str, Any]
                           ) -> Iterator[tuple[int, None, str, list[str]]]:
    """Babel's extractor for a rules file (babel.cfg names it for the packaged
    defaults): every rule's `summary` and every SLO's `description`, as YAML reads them
    (a folded `>-` text is one line), with the line it starts on."""
    document = yaml.compose(fileobj.read().decode("utf-8"))
    if not isinstance(document, yaml.MappingNode):
        return
    wanted = {"rules": "summary", "slos": "description"}
    for section, entries in document.value:
        field = wanted.get(section.value)
        if field is None or not isinstance(entries, yaml.SequenceNode):
            continue
        for entry in entries.value:
            if not isinstance(entry, yaml.MappingNode):
                continue
            for key, value in entry.value:
                if key.value == field and isinstance(value, yaml.ScalarNode) and value.value:
                    yield value.start_mark.line + 1, None, value.value, []


def load_rules(path: str | Path | None = None) -> RuleFile:
    """The rules in `path`, or the packaged defaults when `path` is None or absent."""
    if path is None or not Path(path).exists():
        return parse_rules(default_rules_text(), f"(packaged) {DEFAULT_RULES_RESOURCE}")
    try:
        text = Path(path).read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RulesError(f"{path}: cannot be read ({exc})") from exc
    return parse_rules(text, str(path))


def parse_rules(text: str, source: str) -> RuleFile:
    """A rules document (YAML) checked; `source` names it in errors."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RulesError(f"{source}: not valid YAML: {exc}".replace("\n", " ")) from exc
    if document is None:
        document = {}
    if not isinstance(document, dict):
        raise RulesError(f"{source}: expected a mapping with rules:, slos: and "
                         "notifications:")
    try:
        return RuleFile.model_validate(document)
    except ValidationError as exc:
        raise RulesError(f"{source}: {_describe(exc, document)}") from exc


def _describe(exc: ValidationError, document: dict[str, Any]) -> str:
    """The first error as 'rule NAME (rules[i]), field F: message'."""
    error = exc.errors()[0]
    location = list(error["loc"])
    message = error["msg"].removeprefix("Value error, ")
    where = ""
    if location and location[0] in ("rules", "slos") and len(location) > 1:
        section, index = location[0], location[1]
        entries = document.get(section)
        entry = entries[index] if isinstance(entries, list) and isinstance(index, int) \
            and index < len(entries) else None
        name = entry.get("name") if isinstance(entry, dict) else None
        what = "rule" if section == "rules" else "SLO"
        where = f"{what} '{name}' ({section}[{index}])" if name else f"{section}[{index}]"
        rest = location[2:]
        if section == "rules" and rest and rest[0] in RULE_KINDS:
            rest = rest[1:]  # the kind pydantic chose, not a field
        if error["type"] == "union_tag_invalid" or (
                error["type"] == "union_tag_not_found"):
            return (f"{where}, field 'kind': must be one of {', '.join(RULE_KINDS)}")
    else:
        rest = location
    field = ".".join(str(part) for part in rest) or None
    if field == "for_":
        field = "for"
    parts = [part for part in (where, f"field '{field}'" if field else "") if part]
    return f"{', '.join(parts)}: {message}" if parts else message
