"""`kansoku drill list|start|hint|answer|fix|status|end|history|glossary`: incident drills,
scored
(docs/drills.md).

`start` picks the drill's fault with a seed, switches it on in the stack of the data
directory and runs the drill's load in the background; the learner investigates with
the explorer, asks for hints, answers (service, cause category, and a trace as
evidence, checked through the explorer's API), undoes the fault and asks `fix` to check
that the shop recovered; `end` switches the fault off whatever happened, stops the load,
shows the score and keeps it in the learner's history (PostgreSQL), which `history`
lists.

The attempt in progress is a file in the data directory (`drill.json`). The drill
machinery is imported inside the commands: every `kansoku` command imports this module.
"""

from __future__ import annotations

import asyncio
import getpass
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from kansoku.commands.common import DataDir, console, fail, load_settings, print_table
from kansoku.commands.flags import flags_file

if TYPE_CHECKING:
    from datetime import datetime

    from kansoku.chaos.actions import Stack
    from kansoku.drills.debrief import AlertChange
    from kansoku.drills.evidence import Verdict
    from kansoku.drills.model import Drill, Truth
    from kansoku.drills.scoring import Attempt, Score
    from kansoku.stack.settings import StackSettings

app = typer.Typer(help="Incident drills: break the shop, investigate, answer, fix — "
                  "scored.", no_args_is_help=True)

#: The language of the drills' words when neither --lang nor KANSOKU_LANG says.
LANGUAGES = ("ja", "en")
LANG_VARIABLE = "KANSOKU_LANG"

Json = Annotated[bool, typer.Option("--json", help="Print JSON, for scripts.")]
Lang = Annotated[str | None, typer.Option(
    "--lang", help="ja or en [env: KANSOKU_LANG; default: from LANG, else en]",
    show_default=False)]


def _language(lang: str | None) -> str:
    chosen = lang or os.environ.get(LANG_VARIABLE)
    if chosen is None:
        return "ja" if os.environ.get("LANG", "").startswith("ja") else "en"
    if chosen not in LANGUAGES:
        fail(f"--lang {chosen!r} is not a language of the drills — use ja or en", code=2)
    return chosen


def _print_json(document: Any) -> None:
    typer.echo(json.dumps(document, ensure_ascii=False, indent=2, default=str))


def _attempt_path(settings: StackSettings) -> Path:
    from kansoku.drills.scoring import ATTEMPT_FILE

    return settings.data_dir / ATTEMPT_FILE


def _in_progress(settings: StackSettings) -> Attempt:
    """The attempt in progress, or the line saying how to start one."""
    from kansoku.drills.scoring import AttemptFileError, read_attempt

    try:
        attempt = read_attempt(_attempt_path(settings))
    except AttemptFileError as exc:
        fail(str(exc))
    if attempt is None:
        fail(f"no drill is in progress in {settings.data_dir} — start one with "
             "'kansoku drill start NAME' ('kansoku drill list' shows them)")
    return attempt


def _save(settings: StackSettings, attempt: Attempt) -> None:
    from kansoku.drills.scoring import AttemptFileError, write_attempt

    try:
        write_attempt(_attempt_path(settings), attempt)
    except AttemptFileError as exc:
        fail(str(exc))


def _drill(drill_id: str) -> Drill:
    from kansoku.drills import model

    try:
        return model.load(drill_id)
    except model.DrillError as exc:
        fail(str(exc), code=2)


def _stack(settings: StackSettings, data_dir: Path | None) -> Stack:
    from kansoku.chaos.actions import Stack

    return Stack(settings, flags_file(data_dir))


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes}m{rest:02d}s" if minutes else f"{rest}s"


@app.command("list")
def list_drills(as_json: Json = False, lang: Lang = None) -> None:
    """The drills: name, title, time limit, and the question each asks."""
    from kansoku.drills import model

    language = _language(lang)
    drills = model.shipped()
    if as_json:
        _print_json([{"name": drill.id, "title": drill.title.model_dump(),
                      "question": drill.question.model_dump(),
                      "time_limit_seconds": drill.time_limit, "hints": len(drill.hints),
                      "load_users": drill.load.users} for drill in drills.values()])
        return
    table = Table(title="Drills ('kansoku drill start NAME')", title_justify="left")
    for column in ("name", "title", "time", "question"):
        table.add_column(column, no_wrap=column != "question")
    for drill in drills.values():
        table.add_row(drill.id, drill.title(language), _duration(drill.time_limit),
                      drill.question(language))
    print_table(table)


@app.command("glossary")
def glossary(as_json: Json = False, lang: Lang = None) -> None:
    """The words the drills use, explained (in Japanese with --lang ja)."""
    from kansoku.drills import model

    language = _language(lang)
    try:
        terms = model.glossary()
    except model.DrillError as exc:
        fail(f"{exc} — the installed kansoku is damaged; reinstall it")
    if as_json:
        _print_json([term.model_dump() for term in terms])
        return
    table = Table(title="Glossary", title_justify="left")
    table.add_column("term", no_wrap=True)
    table.add_column("meaning")
    for term in terms:
        table.add_row(term(language).name, term(language).meaning)
    print_table(table)


@app.command("start")
def start(
    name: Annotated[str, typer.Argument(help="The drill ('kansoku drill list')",
                                        show_default=False)],
    seed: Annotated[int | None, typer.Option(
        "--seed", min=0, max=2**62, help="Pick the fault with this seed (default: a random one)",
        show_default=False)] = None,
    user: Annotated[str | None, typer.Option(
        "--user", help="Whose history the score goes to [env: KANSOKU_DRILL_USER; "
        "default: your login name]", show_default=False)] = None,
    load: Annotated[bool, typer.Option(
        "--load/--no-load", help="Run the drill's load in the background (kansoku "
        "load); --no-load when you drive the shop yourself")] = True,
    as_json: Json = False,
    lang: Lang = None,
    data_dir: DataDir = None,
) -> None:
    """Start a drill: pick its fault, switch it on in the running stack, start its load,
    and print the question."""
    import secrets

    from kansoku.chaos.actions import StackError
    from kansoku.drills import stack as drill_stack
    from kansoku.drills.scoring import Attempt, AttemptFileError, now, read_attempt

    language = _language(lang)
    drill = _drill(name)
    settings = load_settings(data_dir)

    try:
        running = read_attempt(_attempt_path(settings))
    except AttemptFileError as exc:
        fail(str(exc))
    if running is not None:
        fail(f"drill {running.drill_id} is in progress — finish it with 'kansoku drill end' "
             "first")
    chosen_seed = secrets.randbelow(2**31) if seed is None else seed
    learner = _learner(user)
    stack = _stack(settings, data_dir)
    attempt = Attempt(drill_id=drill.id, seed=chosen_seed, user=learner, language=language,
                      started_at=now())
    fault = drill.fault(chosen_seed)
    if load:
        try:
            stack.state()  # the load needs a gateway: fail before anything changes
        except StackError as exc:
            fail(str(exc))
    # Written before the fault is switched on, so that `end` can always undo it.
    _save(settings, attempt)
    if fault is not None:
        try:
            asyncio.run(drill_stack.switch_on(stack, fault))
        except drill_stack.DrillStackError as exc:
            _attempt_path(settings).unlink(missing_ok=True)
            fail(str(exc))
    if load:
        attempt.load_pid, attempt.load_started = drill_stack.start_load(settings, drill.load)
        _save(settings, attempt)
    if as_json:
        _print_json({"drill": drill.id, "seed": chosen_seed, "user": learner,
                     "title": drill.title(language), "question": drill.question(language),
                     "time_limit_seconds": drill.time_limit, "hints": len(drill.hints),
                     "load_pid": attempt.load_pid})
        return
    console.print(f"[bold]{drill.title(language)}[/]  (drill {drill.id}, seed "
                  f"{chosen_seed}, {_duration(drill.time_limit)})", highlight=False)
    console.print(drill.question(language), highlight=False)
    if load:
        console.print(f"Load: {drill.load.users} shoppers for "
                      f"{_duration(drill.load.duration)} (log: "
                      f"{settings.log_dir / 'drill-load.log'})", highlight=False)
    console.print("Investigate with the explorer; then 'kansoku drill answer --service S "
                  "--cause C --trace T' (or --nothing-wrong), 'kansoku drill hint' for a "
                  "hint.", highlight=False)


@app.command("hint")
def hint(as_json: Json = False, data_dir: DataDir = None) -> None:
    """The next hint of the drill in progress (each costs points)."""
    settings = load_settings(data_dir)
    attempt = _in_progress(settings)
    drill = _drill(attempt.drill_id)
    if attempt.hints_taken >= len(drill.hints):
        fail(f"no more hints: all {len(drill.hints)} are taken ('kansoku drill status' "
             "shows them)")
    given = drill.hints[attempt.hints_taken]
    attempt.hints_taken += 1
    _save(settings, attempt)
    if as_json:
        _print_json({"hint": attempt.hints_taken, "of": len(drill.hints), "cost": given.cost,
                     "text": given(attempt.language)})
        return
    console.print(f"Hint {attempt.hints_taken}/{len(drill.hints)} (-{given.cost} points): "
                  f"{given(attempt.language)}", highlight=False)


@app.command("answer")
def answer(
    service: Annotated[str | None, typer.Option(
        "--service", help="The service at fault", show_default=False)] = None,
    cause: Annotated[str | None, typer.Option(
        "--cause", help="The cause category: errors, latency, resources, messaging, "
        "browser or outage", show_default=False)] = None,
    trace: Annotated[str | None, typer.Option(
        "--trace", help="Evidence: the id of a trace in the explorer that shows the fault",
        show_default=False)] = None,
    nothing_wrong: Annotated[bool, typer.Option(
        "--nothing-wrong", help="Answer that nothing is wrong (no service, cause or "
        "trace)")] = False,
    explorer: Annotated[str | None, typer.Option(
        "--explorer", help="The explorer to read the trace from (default: the running "
        "stack's)", show_default=False)] = None,
    as_json: Json = False,
    data_dir: DataDir = None,
) -> None:
    """Answer the drill in progress: the service, the cause category and a trace as
    evidence — or --nothing-wrong. A wrong answer costs points; try again."""
    from kansoku.drills import model
    from kansoku.drills.scoring import Answer, assess, needs_evidence, now

    if nothing_wrong and (service or cause or trace):
        fail("--nothing-wrong takes no --service, --cause or --trace — give one or the "
             "other", code=2)
    if not nothing_wrong:
        if not (service and cause and trace):
            fail("an answer needs --service, --cause and --trace (or --nothing-wrong) — "
                 "e.g. --service payments --cause errors --trace 4bf92f35…", code=2)
        if service not in model.STOPPABLE:
            fail(f"there is no service '{service}' — choose one of: "
                 f"{', '.join(model.STOPPABLE)}", code=2)
        if cause not in model.CATEGORIES:
            fail(f"there is no cause category '{cause}' — choose one of: "
                 f"{', '.join(model.CATEGORIES)}", code=2)
    settings = load_settings(data_dir)
    attempt = _in_progress(settings)
    if attempt.diagnosed is not None:
        fail("this drill is already answered right — 'kansoku drill fix' checks your fix, "
             "'kansoku drill end' ends it")
    drill = _drill(attempt.drill_id)
    truth = drill.truth(attempt.seed)
    said_cause = model.NOTHING if nothing_wrong else str(cause)
    verdict = None
    if needs_evidence(truth, service, said_cause):
        verdict = _check_evidence(settings, data_dir, explorer, str(trace), truth)
    outcome, message = assess(truth, service, said_cause, verdict)
    attempt.answers.append(Answer(at=now(), service=service, cause=said_cause,
                                  trace_id=trace, outcome=outcome, message=message))
    _save(settings, attempt)
    if as_json:
        _print_json({"outcome": outcome.value, "message": message,
                     "right": outcome == "right"})
        return
    colour = "green" if outcome == "right" else "red"
    console.print(f"[{colour}]{outcome}[/]: {message}", highlight=False)


def _check_evidence(settings: StackSettings, data_dir: Path | None, explorer: str | None,
                    trace: str, truth: Truth) -> Verdict:
    import httpx

    from kansoku.chaos.actions import StackError
    from kansoku.drills import evidence
    from kansoku.topology import EXPLORER_TOKEN_VARIABLE, explorer_headers

    try:
        evidence.trace_id(trace)
    except evidence.EvidenceError as exc:
        fail(str(exc), code=2)
    try:
        url = explorer or _stack(settings, data_dir).url("explorer")
    except StackError as exc:
        fail(f"{exc} — or name the explorer with --explorer URL")

    async def read() -> evidence.Verdict:
        headers = explorer_headers(os.environ.get(EXPLORER_TOKEN_VARIABLE))
        async with httpx.AsyncClient(base_url=url, headers=headers) as client:
            return await evidence.check(client, trace, truth)

    try:
        return asyncio.run(read())
    except evidence.EvidenceError as exc:
        fail(str(exc))


@app.command("fix")
def fix(as_json: Json = False, data_dir: DataDir = None) -> None:
    """Check your fix: the fault undone, and the shop recovered (the chaos probes: the
    service ready, a checkout paid, its error rate and latency back within bounds)."""
    from kansoku.drills import stack as drill_stack
    from kansoku.drills.scoring import FixCheck, now

    settings = load_settings(data_dir)
    attempt = _in_progress(settings)
    fault = _drill(attempt.drill_id).fault(attempt.seed)
    if fault is None:
        fail("this drill has nothing to fix — answer it, or end it with "
             "'kansoku drill end'")
    if attempt.mitigated is not None:
        fail("your fix has already been checked and held — 'kansoku drill end' ends the "
             "drill")
    recovered, detail = asyncio.run(drill_stack.check_fix(_stack(settings, data_dir), fault))
    attempt.fix_checks.append(FixCheck(at=now(), recovered=recovered, detail=detail))
    _save(settings, attempt)
    if as_json:
        _print_json({"recovered": recovered, "detail": detail})
        return
    colour = "green" if recovered else "red"
    console.print(f"[{colour}]{'fixed' if recovered else 'not fixed'}[/]: {detail}",
                  highlight=False)


def _score_document(score: Score) -> dict[str, Any]:
    from dataclasses import asdict

    return asdict(score)


def _score_table(title: str, score: Score) -> Table:
    table = Table(title=title, title_justify="left", show_header=False)
    table.add_column("what")
    table.add_column("value", justify="right")
    table.add_row("points", f"[bold]{score.points}[/]")
    table.add_row("time to detect", _duration(score.detect_seconds))
    table.add_row("time to diagnose", _duration(score.diagnose_seconds))
    table.add_row("time to mitigate", _duration(score.mitigate_seconds))
    table.add_row("hints", f"-{score.hint_points} points")
    table.add_row("wrong tries", str(score.wrong_tries))
    table.add_row("false alarms", str(score.false_alarms))
    if score.over_time:
        table.add_row("over time", "yes")
    return table


@app.command("status")
def status(as_json: Json = False, data_dir: DataDir = None) -> None:
    """The drill in progress: its question, the hints taken, your answers and fix
    checks, and the score so far."""
    from kansoku.drills.scoring import now, score

    settings = load_settings(data_dir)
    attempt = _in_progress(settings)
    drill = _drill(attempt.drill_id)
    so_far = score(attempt, drill, now())
    elapsed = (now() - attempt.started_at).total_seconds()
    language = attempt.language
    hints = [given(language) for given in drill.hints[:attempt.hints_taken]]
    if as_json:
        _print_json({"drill": drill.id, "seed": attempt.seed, "user": attempt.user,
                     "question": drill.question(language), "elapsed_seconds": elapsed,
                     "time_limit_seconds": drill.time_limit, "hints": hints,
                     "answers": [a.model_dump(mode="json") for a in attempt.answers],
                     "fix_checks": [c.model_dump(mode="json") for c in attempt.fix_checks],
                     "score": _score_document(so_far)})
        return
    console.print(f"[bold]{drill.title(language)}[/] (drill {drill.id}, seed "
                  f"{attempt.seed}) — {_duration(elapsed)} of "
                  f"{_duration(drill.time_limit)}", highlight=False)
    console.print(drill.question(language), highlight=False)
    for number, text in enumerate(hints, 1):
        console.print(f"hint {number}: {text}", highlight=False)
    for given in attempt.answers:
        console.print(f"answer at {_duration(attempt.seconds_to(given.at))}: "
                      f"{given.outcome} — {given.message}", highlight=False)
    for check in attempt.fix_checks:
        console.print(f"fix at {_duration(attempt.seconds_to(check.at))}: {check.detail}",
                      highlight=False)
    print_table(_score_table("Score so far", so_far))


@app.command("end")
def end(
    explorer: Annotated[str | None, typer.Option(
        "--explorer", help="The explorer to read the alerts from (default: the running "
        "stack's)", show_default=False)] = None,
    as_json: Json = False,
    data_dir: DataDir = None,
) -> None:
    """End the drill in progress: switch its fault off (always), stop its load, show
    the score, what the fault was and a debrief beside kansoku's own alerts, and keep
    the score in your history."""
    from kansoku.drills import debrief
    from kansoku.drills import stack as drill_stack
    from kansoku.drills.scoring import now, score

    settings = load_settings(data_dir)
    attempt = _in_progress(settings)
    drill = _drill(attempt.drill_id)
    fault = drill.fault(attempt.seed)
    stack = _stack(settings, data_dir)
    problems: list[str] = []
    undone = "no fault to undo"
    if fault is not None:
        try:
            undone = asyncio.run(drill_stack.switch_off(stack, fault))
        except drill_stack.DrillStackError as exc:
            problems.append(f"could not undo the fault ({exc}) — 'kansoku flags reset' "
                            "and 'kansoku start NAME' do it by hand")
    if attempt.load_pid is not None:
        drill_stack.stop_load(attempt.load_pid, attempt.load_started or 0.0)
    ended = now()
    final = score(attempt, drill, ended)
    saved = _keep(settings, stack, attempt, drill, final, ended)
    if saved is not None:
        problems.append(saved)
    _attempt_path(settings).unlink(missing_ok=True)
    truth = drill.truth(attempt.seed)
    fault_words = fault.describe() if fault else "nothing"
    explorer_url, changes, note = _alerts(settings, data_dir, explorer, attempt, ended)
    first = debrief.first_alert(changes, truth, attempt.started_at) if note is None else None
    moments = debrief.timeline(attempt, changes, explorer_url)
    if as_json:
        from dataclasses import asdict

        _print_json({"drill": drill.id, "seed": attempt.seed, "fault": fault_words,
                     "service": truth.service, "cause": truth.category,
                     "flag": truth.flag, "undone": undone, "score": _score_document(final),
                     "first_alert": asdict(first) if first else None,
                     "alerts_note": note,
                     "debrief": [asdict(moment) for moment in moments],
                     "problems": problems})
    else:
        answer_words = ("nothing was wrong" if truth.nothing_wrong
                        else f"{truth.service}, {truth.category}")
        console.print(f"The fault was: {fault_words} ({answer_words}). {undone}.",
                      highlight=False)
        print_table(_score_table(f"Drill {drill.id}", final))
        if note is not None:
            console.print(f"kansoku's alerts: not read ({note})", highlight=False)
        elif first is None:
            console.print("kansoku's alerts: none fired" + (
                "" if truth.nothing_wrong else f" on {truth.service}") + " during the drill",
                highlight=False)
        else:
            console.print(f"kansoku's alerts: {first.rule} fired on {first.service} after "
                          f"{_duration(first.seconds)}", highlight=False)
        for moment in moments:
            link = f"  {moment.link}" if moment.link else ""
            console.print(f"  {_duration(moment.seconds):>7}  {moment.who:<7}  "
                          f"{moment.what}{link}", highlight=False)
        for problem in problems:
            console.print(f"[yellow]warning:[/] {problem}", highlight=False)
    if problems:
        raise typer.Exit(1)


def _alerts(settings: StackSettings, data_dir: Path | None, explorer: str | None,
            attempt: Attempt, ended: datetime) -> tuple[str | None, list[AlertChange],
                                                        str | None]:
    """The explorer's URL, its alert changes during the attempt, and why they could not
    be read (None when they were)."""
    import httpx

    from kansoku.chaos.actions import StackError
    from kansoku.drills import debrief
    from kansoku.topology import EXPLORER_TOKEN_VARIABLE, explorer_headers

    try:
        url = explorer or _stack(settings, data_dir).url("explorer")
    except StackError as exc:
        return None, [], str(exc)

    async def read() -> list[debrief.AlertChange]:
        headers = explorer_headers(os.environ.get(EXPLORER_TOKEN_VARIABLE))
        async with httpx.AsyncClient(base_url=url, headers=headers) as client:
            return await debrief.alert_changes(client, attempt.started_at, ended)

    try:
        return url, asyncio.run(read()), None
    except debrief.DebriefError as exc:
        return url, [], str(exc)


@app.command("history")
def history(
    user: Annotated[str | None, typer.Option(
        "--user", help="Whose history [env: KANSOKU_DRILL_USER; default: your login name]",
        show_default=False)] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000,
                                       help="How many attempts, newest first")] = 20,
    as_json: Json = False,
    data_dir: DataDir = None,
) -> None:
    """Your finished drills, newest first: the fault each had and how you scored."""
    from kansoku.drills import stack as drill_stack
    from kansoku.drills import store
    from kansoku.kit.db import Database, redact_url

    settings = load_settings(data_dir)
    learner = _learner(user)
    try:
        url = drill_stack.database_url(settings, _stack(settings, data_dir))
    except drill_stack.DrillStackError as exc:
        fail(str(exc))

    async def read() -> list[store.FinishedAttempt]:
        database = Database(url, schema=store.SCHEMA, application_name="kansoku-drill")
        try:
            async with database.transaction() as session:
                return await store.history(session, learner, limit)
        finally:
            await database.dispose()

    try:
        attempts = asyncio.run(read())
    except Exception as exc:
        first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        fail(f"cannot read the history in {redact_url(url)} ({first_line[:200]}) — is the "
             "schema migrated? (kansoku migrate)")
    if as_json:
        _print_json([attempt.model_dump(mode="json") for attempt in attempts])
        return
    table = Table(title=f"Drills of {learner}", title_justify="left")
    for column in ("ended", "drill", "fault", "points", "detect", "diagnose", "mitigate",
                   "hints", "wrong"):
        table.add_column(column)
    for attempt in attempts:
        table.add_row(f"{attempt.ended_at:%Y-%m-%d %H:%M}", attempt.drill_id, attempt.fault,
                      str(attempt.points), _duration(attempt.detect_seconds),
                      _duration(attempt.diagnose_seconds), _duration(attempt.mitigate_seconds),
                      str(attempt.hints_taken), str(attempt.wrong_tries))
    print_table(table)


def _learner(user: str | None) -> str:
    return user or os.environ.get("KANSOKU_DRILL_USER") or getpass.getuser()


def _keep(settings: StackSettings, stack: Stack, attempt: Attempt, drill: Drill,
          final: Score, ended: datetime) -> str | None:
    """Add the attempt to the learner's history; None when kept, else why not."""
    from kansoku.drills import stack as drill_stack
    from kansoku.drills import store
    from kansoku.kit.db import Database, redact_url

    fault = drill.fault(attempt.seed)
    finished = store.FinishedAttempt(
        user_name=attempt.user, drill_id=drill.id, seed=attempt.seed,
        fault=fault.describe() if fault else "nothing", started_at=attempt.started_at,
        ended_at=ended, points=final.points, detect_seconds=final.detect_seconds,
        diagnose_seconds=final.diagnose_seconds, mitigate_seconds=final.mitigate_seconds,
        hints_taken=attempt.hints_taken, hint_points=final.hint_points,
        wrong_tries=final.wrong_tries, false_alarms=final.false_alarms)
    try:
        url = drill_stack.database_url(settings, stack)
    except drill_stack.DrillStackError as exc:
        return f"the score is not kept: {exc}"

    async def add() -> None:
        database = Database(url, schema=store.SCHEMA, application_name="kansoku-drill")
        try:
            async with database.transaction() as session:
                await store.add_attempt(session, finished)
        finally:
            await database.dispose()

    try:
        asyncio.run(add())
    except Exception as exc:
        first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return (f"the score is not kept in {redact_url(url)} ({first_line[:200]}) — "
                "is the schema migrated? (kansoku migrate)")
    return None
