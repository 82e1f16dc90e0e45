"""A drill as written in YAML (`catalogue/*.yaml` beside this module), read into typed
models and checked before anything runs.

A drill asks one question (in Japanese and English) about a shop under load. Its fault is
one of a few **candidates** — a fault flag's variant, or a component stopped — picked
with a seed when the drill starts, so the same drill run twice need not have the same
answer. A drill without candidates has no fault: "nothing is wrong" is its answer.

    id: checkout-fails
    title: {ja: 決済が失敗する, en: Checkouts fail}
    question: {ja: …, en: Some customers cannot pay. Which service, and why?}
    faults:
      - {flag: paymentFailure, variant: 50%}
      - {stop: payments}
    load: {users: 5, duration: 10m}
    hints:
      - {cost: 10, ja: …, en: Look at the services' error rates.}

What a right answer is — the service, the cause category, the flag — is never written in
the drill: `Fault.truth` derives it from the fault catalogue (`kansoku.faults.catalogue`),
so a flag that moves to another service moves every drill's answer with it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from importlib import resources
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    model_validator,
)

from kansoku import topology
from kansoku.faults import catalogue
from kansoku.faults.catalogue import FaultCategory
from kansoku.kit.durations import parse_duration
from kansoku.kit.i18n import N_, Phrase, _

#: Where the shipped drills are: `catalogue/` beside this module (package data).
CATALOGUE_FOLDER = "catalogue"

#: The services a drill may stop: the shop's own, which the explorer sees.
STOPPABLE: tuple[str, ...] = tuple(service.name for service in topology.SERVICES)


class DrillError(ValueError):
    """A drill that cannot be read or does not exist; the message says how to fix it."""


def _duration(value: Any) -> float:
    return parse_duration(value, positive=True)


#: A length of time: `90s`, `10m`, or a number of seconds.
Duration = Annotated[float, BeforeValidator(_duration)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Text(_Model):
    """The same words in both languages a learner may read."""

    ja: str = Field(min_length=1)
    en: str = Field(min_length=1)

    def __call__(self, language: str) -> str:
        return self.ja if language == "ja" else self.en


@dataclass(frozen=True)
class Truth:
    """The right answer to a drill, derived from its fault: the service at fault, the
    category of the cause, and the flag whose `feature_flag.key` marks its spans (None
    when no flag is involved). `Truth.NOTHING` is the answer of a drill without a fault."""

    service: str | None
    category: FaultCategory | None
    flag: str | None

    @property
    def nothing_wrong(self) -> bool:
        return self.service is None


NOTHING_WRONG = Truth(service=None, category=None, flag=None)


class FlagFault(_Model):
    """A fault flag switched to one of its variants, as `kansoku flags set` does."""

    flag: str
    variant: str

    @model_validator(mode="after")
    def _known(self) -> FlagFault:
        # The catalogue's spelling, so the flags file and the truth use one name.
        definition = catalogue.flag_definition(self.flag)
        variant = catalogue.canonical_variant(definition, self.variant)
        if variant == definition.variant_names[0]:
            raise ValueError(f"variant '{variant}' of {definition.name} is no fault — "
                             f"choose one of {', '.join(definition.variant_names[1:])}")
        object.__setattr__(self, "flag", definition.name)
        object.__setattr__(self, "variant", variant)
        return self

    @property
    def truth(self) -> Truth:
        definition = catalogue.FLAGS[self.flag]
        return Truth(definition.service, definition.category, definition.name)

    def describe(self) -> Phrase:
        """The fault in words, said in the reader's language (`.english`: as the
        history keeps it)."""
        return Phrase(N_("flag {flag} = {variant}"), flag=self.flag, variant=self.variant)


class StopFault(_Model):
    """A service stopped and held by the supervisor, as `kansoku stop NAME` (and the
    chaos action `stop`) does: an outage of that service."""

    stop: str

    @model_validator(mode="after")
    def _known(self) -> StopFault:
        if self.stop not in STOPPABLE:
            raise ValueError(f"there is no service '{self.stop}' to stop — choose one "
                             f"of: {', '.join(STOPPABLE)}")
        return self

    @property
    def truth(self) -> Truth:
        return Truth(self.stop, FaultCategory.OUTAGE, None)

    def describe(self) -> Phrase:
        return Phrase(N_("{service} stopped"), service=self.stop)


Fault = FlagFault | StopFault


def _fault_kind(value: Any) -> str:
    if isinstance(value, dict):
        return "stop" if "stop" in value else "flag"
    return "stop" if isinstance(value, StopFault) else "flag"


#: A fault as written: `{flag: …, variant: …}` or `{stop: …}`.
FaultEntry = Annotated[Annotated[FlagFault, Tag("flag")] | Annotated[StopFault, Tag("stop")],
                       Discriminator(_fault_kind)]


class Load(_Model):
    """The traffic `kansoku drill start` runs (the load generator of `kansoku load`)
    while the learner investigates."""

    users: int = Field(5, ge=1, le=200)
    duration: Duration = 900.0


class Hint(Text):
    """One hint, in both languages; taking it costs `cost` points. Hints are given in
    order."""

    cost: int = Field(ge=0, le=100)


class Drill(_Model):
    """One drill of the catalogue."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    title: Text
    question: Text
    #: The candidates, one picked per run; none: a drill where nothing is wrong.
    faults: list[FaultEntry] = Field(default_factory=list)
    load: Load = Load()
    hints: list[Hint] = Field(min_length=1)
    #: How long the learner has; past it the drill still runs, the score says so.
    time_limit: Duration = 900.0

    @property
    def has_fault(self) -> bool:
        return bool(self.faults)

    def fault(self, seed: int) -> Fault | None:
        """The fault this run has: one of the candidates, picked by `seed` (the same
        seed always picks the same one); None for a drill without a fault."""
        if not self.faults:
            return None
        return random.Random(seed).choice(self.faults)  # noqa: S311 - a drill, not a secret

    def truth(self, seed: int) -> Truth:
        """The right answer of the run with `seed`."""
        fault = self.fault(seed)
        return NOTHING_WRONG if fault is None else fault.truth

    def categories(self) -> set[FaultCategory]:
        """The cause categories its candidates cover."""
        return {fault.truth.category for fault in self.faults
                if fault.truth.category is not None}


def shipped() -> dict[str, Drill]:
    """Every drill of the catalogue, by id, sorted."""
    folder = resources.files("kansoku.drills") / CATALOGUE_FOLDER
    found = {}
    for entry in folder.iterdir():
        if entry.name.endswith(".yaml"):
            drill = parse(entry.read_text("utf-8"), entry.name)
            if f"{drill.id}.yaml" != entry.name:
                raise DrillError(f"{entry.name}: its id is '{drill.id}' — name the file "
                                 f"{drill.id}.yaml")
            found[drill.id] = drill
    return dict(sorted(found.items()))


def load(drill_id: str) -> Drill:
    """The shipped drill `drill_id`; `DrillError` naming the drills there are."""
    drills = shipped()
    if drill_id not in drills:
        raise DrillError(_("there is no drill '{drill}' — 'kansoku drill list' shows them: "
                           "{choices}").format(drill=drill_id, choices=", ".join(drills)))
    return drills[drill_id]


def parse(text: str, source: str) -> Drill:
    """A drill document (YAML) checked; `source` names it in errors."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise DrillError(f"{source}: not valid YAML ({exc})") from exc
    try:
        return Drill.model_validate(document)
    except ValidationError as exc:
        first = exc.errors()[0]
        # Without the tags of the fault's union (`flag`, `stop`): the file's own words.
        loc = [str(part) for part in first["loc"]]
        if len(loc) > 2 and loc[0] == "faults" and loc[2] in ("flag", "stop"):
            del loc[2]
        where = ".".join(loc) or "the document"
        raise DrillError(f"{source}: {where}: {first['msg']}") from exc


#: The drills' glossary, beside this module.
GLOSSARY_FILE = "glossary.yaml"


class Meaning(_Model):
    """A term as one language names and explains it."""

    name: str = Field(min_length=1)
    meaning: str = Field(min_length=1)


class Term(_Model):
    """One word the drills use, in both languages."""

    term: str = Field(min_length=1)
    ja: Meaning
    en: Meaning

    def __call__(self, language: str) -> Meaning:
        return self.ja if language == "ja" else self.en


def glossary() -> list[Term]:
    """The words the drills use, explained in Japanese and English."""
    text = (resources.files("kansoku.drills") / GLOSSARY_FILE).read_text("utf-8")
    try:
        return [Term.model_validate(entry) for entry in yaml.safe_load(text)]
    except (yaml.YAMLError, ValidationError, TypeError) as exc:
        raise DrillError(f"{GLOSSARY_FILE}: {exc}") from exc


#: The answer categories a learner may name: the catalogue's, one vocabulary.
CATEGORIES: tuple[str, ...] = tuple(category.value for category in FaultCategory)
#: What `--cause` takes besides them, on a drill where nothing is wrong.
NOTHING: Literal["nothing"] = "nothing"
