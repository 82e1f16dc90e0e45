"""What the lab accepts and answers: the seeds' request and response formats.

Request: `{"user_id": "…", "operation": "n_plus_one", "parameters": {"limit": 10,
"category": "telescopes"}}` (every field optional; the user comes from the token).
Answer: `{"status": "success" | "error", "data": {"results": […], "execution_time": 2.5,
"query_count": 15}, "user_id": "…", "trace_id": "…"}`, plus what ran (`operation`,
`fixed`, `variant`) and, for an error, what PostgreSQL said (`error`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from kansoku.kit.fields import DbId, Text, Whole

#: The scenarios as they appear in URLs, and the seeds' name of each operation.
Scenario = Literal["n-plus-one", "slow-query", "database-error"]
SEED_NAMES: Final[dict[str, str]] = {
    "n-plus-one": "n_plus_one",
    "slow-query": "slow_query",
    "database-error": "database_error",
}
#: The forms a scenario comes in; the first is its default. N+1 has one form.
VARIANTS: Final[dict[str, tuple[str, ...]]] = {
    "n-plus-one": (),
    "slow-query": ("sleep", "cartesian"),
    "database-error": ("missing-table", "constraint"),
}
Variant = Literal["sleep", "cartesian", "missing-table", "constraint"]


@dataclass(frozen=True)
class Operation:
    """One lab operation: a scenario, as the problem or as its fixed twin."""

    scenario: str
    fixed: bool

    @property
    def name(self) -> str:
        """The seeds' operation name (`n_plus_one`, `n_plus_one_fixed`, …): the value of
        the `operation.type` attribute."""
        return SEED_NAMES[self.scenario] + ("_fixed" if self.fixed else "")

    @property
    def path(self) -> str:
        """Where the lab serves it: `/scenarios/n-plus-one`, `/scenarios/n-plus-one/fixed`.
        A route of its own each, so each has its own server span name and metrics."""
        return f"/scenarios/{self.scenario}" + ("/fixed" if self.fixed else "")


#: Every operation the lab offers, problems first.
OPERATIONS: Final = tuple(Operation(scenario, fixed) for scenario in SEED_NAMES
                          for fixed in (False, True))


class Parameters(BaseModel):
    """What to run the operation on (N+1 has no variants)."""

    model_config = ConfigDict(extra="forbid")

    limit: Whole = Field(10, ge=1, le=100, description="How many products (N in N+1)")
    category: str | None = Field(None, min_length=1, max_length=64,
                                 pattern=r"^[a-z0-9][a-z0-9-]*$",
                                 description="A category's slug, e.g. `telescopes`",
                                 examples=["telescopes"])
    product_id: DbId | None = Field(None, description="Database error, `constraint`: the "
                                    "product to save as a favourite (default: the first "
                                    "one)")


class SlowQueryParameters(Parameters):
    variant: Literal["sleep", "cartesian"] | None = Field(
        None, description="`sleep` (default) or `cartesian` (in `category`, or the "
        "first category)")


class DatabaseErrorParameters(Parameters):
    variant: Literal["missing-table", "constraint"] | None = Field(
        None, description="`missing-table` (default) or `constraint`")


#: Each scenario's parameters: its own variants, so the contract names them.
PARAMETERS: Final[dict[str, type[Parameters]]] = {
    "n-plus-one": Parameters,
    "slow-query": SlowQueryParameters,
    "database-error": DatabaseErrorParameters,
}


class LabRequest(BaseModel):
    """The seeds' request. `user_id`, when sent, must be the caller's own."""

    model_config = ConfigDict(extra="forbid")

    user_id: Text | None = Field(None, max_length=64)
    operation: str | None = Field(None, max_length=64,
                                  description="The seeds' name, e.g. `n_plus_one`; must "
                                  "match the URL when sent")
    parameters: Parameters = Field(default_factory=Parameters)


def request_model(operation: Operation) -> type[LabRequest]:
    """The request `operation`'s route takes: its scenario's parameters, and
    `operation` only as its own name."""
    parameters = PARAMETERS[operation.scenario]
    name = "".join(part.capitalize() for part in operation.name.split("_")) + "Request"
    model: type[LabRequest] = create_model(
        name, __base__=LabRequest,
        operation=(str | None, Field(None, pattern=f"^{operation.name}$",
                                     description="The seeds' name of this operation; "
                                     "may be left out")),
        parameters=(parameters, Field(default_factory=parameters)))
    return model


class LabData(BaseModel):
    results: list[dict[str, Any]]
    #: Seconds the operation took inside the lab (its database work and the Python
    #: around it), measured on the lab's clock.
    execution_time: float
    #: Statements sent to PostgreSQL, counted as they were executed.
    query_count: int


class LabError(BaseModel):
    """What went wrong, as PostgreSQL put it."""

    #: The driver's exception class, e.g. `UndefinedTableError`.
    type: str
    #: PostgreSQL's error code, e.g. `42P01` (undefined table), `23505` (unique violation).
    sqlstate: str | None
    message: str


class LabAnswer(BaseModel):
    status: Literal["success", "error"]
    operation: str
    fixed: bool
    variant: str | None
    data: LabData
    error: LabError | None = None
    user_id: str
    #: The trace this run belongs to (32 hex digits), to look up in the explorer.
    trace_id: str | None
