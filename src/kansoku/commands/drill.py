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

import getpass
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.cells import cell_len
from rich.table import Table

from kansoku.commands.common import DataDir, console, fail, load_settings, print_table
from kansoku.commands.flags import flags_file
from kansoku.commands.typer_texts import TranslatedTyper
from kansoku.kit import i18n
from kansoku.kit.i18n import _

if TYPE_CHECKING:
    from datetime import datetime

    from kansoku.chaos.actions import Stack
    from kansoku.drills.debrief import AlertChange
    from kansoku.drills.evidence import Verdict
    from kansoku.drills.model import Drill, Truth
    from kansoku.drills.scoring import Attempt, Score
    from kansoku.drills.store import FinishedAttempt
    from kansoku.stack.settings import StackSettings

app = TranslatedTyper(help=_("Incident drills: break the shop, investigate, answer, fix — "
                              "scored."), no_args_is_help=True)

Json = Annotated[bool, typer.Option("--json", help=_("Print JSON, for scripts."))]
Lang = Annotated[str | None, typer.Option(
    "--lang", help=_("ja or en [env: KANSOKU_LANG; default: `kansoku --lang`, else from "
                     "LANG, else en]"), show_default=False)]


def _language(lang: str | None) -> str:
    """The drill's language: this command's --lang (which its messages then speak
    too), else the command line's (`kansoku --lang`, KANSOKU_LANG, LANG)."""
    if lang is not None:
        try:
            i18n.set_language(i18n.Language(lang))
        except ValueError:
            fail(_("--lang {value} is not a language of the drills — use ja or en").format(
                value=repr(lang)), code=2)
    return str(i18n.current_language())


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
        fail(_("no drill is in progress in {path} — start one with 'kansoku drill start "
               "NAME' ('kansoku drill list' shows them)").format(path=settings.data_dir))
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
    if minutes:
        return _("{minutes}m{seconds}s").format(minutes=minutes, seconds=f"{rest:02d}")
    return _("{seconds}s").format(seconds=rest)


@app.command("list", help=_("The drills: name, title, time limit, and the question each "
                            "asks."))
def list_drills(as_json: Json = False, lang: Lang = None) -> None:
    from kansoku.drills import model

    language = _language(lang)
    drills = model.shipped()
    if as_json:
        _print_json([{"name": drill.id, "title": drill.title.model_dump(),
                      "question": drill.question.model_dump(),
                      "time_limit_seconds": drill.time_limit, "hints": len(drill.hints),
                      "load_users": drill.load.users} for drill in drills.values()])
        return
    table = Table(title=_("Drills ('kansoku drill start NAME')"), title_justify="left")
    for column, wraps in ((_("name"), False), (_("title"), False), (_("time"), False),
                          (_("question"), True)):
        table.add_column(column, no_wrap=not wraps)
    for drill in drills.values():
        table.add_row(drill.id, drill.title(language), _duration(drill.time_limit),
                      drill.question(language))
    print_table(table)


@app.command("glossary", help=_("The words the drills use, explained (in Japanese with "
                                "--lang ja)."))
def glossary(as_json: Json = False, lang: Lang = None) -> None:
    from kansoku.drills import model

    language = _language(lang)
    try:
        terms = model.glossary()
    except model.DrillError as exc:
        fail(_("{error} — the installed kansoku is damaged; reinstall it").format(error=exc))
    if as_json:
        _print_json([term.model_dump() for term in terms])
        return
    table = Table(title=_("Glossary"), title_justify="left")
    table.add_column(_("term"), no_wrap=True)
    table.add_column(_("meaning"))
    for term in terms:
        table.add_row(term(language).name, term(language).meaning)
    print_table(table)


@app.command("start", help=_("Start a drill: pick its fault, switch it on in the running "
                             "stack, start its load, and print the question."))
def start(
    name: Annotated[str, typer.Argument(help=_("The drill ('kansoku drill list')"),
                                        show_default=False)],
    seed: Annotated[int | None, typer.Option(
        "--seed", min=0, max=2**62,
        help=_("Pick the fault with this seed (default: a random one)"),
        show_default=False)] = None,
    user: Annotated[str | None, typer.Option(
        "--user", help=_("Whose history the score goes to [env: KANSOKU_DRILL_USER; "
                         "default: your login name]"), show_default=False)] = None,
    load: Annotated[bool, typer.Option(
        "--load/--no-load", help=_("Run the drill's load in the background (kansoku "
                                   "load); --no-load when you drive the shop "
                                   "yourself"))] = True,
    as_json: Json = False,
    lang: Lang = None,
    data_dir: DataDir = None,
) -> None:
    import asyncio
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
        fail(_("drill {drill} is in progress — finish it with 'kansoku drill end' "
               "first").format(drill=running.drill_id))
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
    console.print(_("[bold]{title}[/]  (drill {drill}, seed {seed}, {limit})").format(
        title=drill.title(language), drill=drill.id, seed=chosen_seed,
        limit=_duration(drill.time_limit)), highlight=False)
    console.print(drill.question(language), highlight=False)
    if load:
        console.print(_("Load: {users} shoppers for {duration} (log: {log})").format(
            users=drill.load.users, duration=_duration(drill.load.duration),
            log=settings.log_dir / "drill-load.log"), highlight=False)
    console.print(_("Investigate with the explorer; then 'kansoku drill answer --service S "
                    "--cause C --trace T' (or --nothing-wrong), 'kansoku drill hint' for a "
                    "hint."), highlight=False)


@app.command("hint", help=_("The next hint of the drill in progress (each costs points)."))
def hint(as_json: Json = False, data_dir: DataDir = None) -> None:
    settings = load_settings(data_dir)
    attempt = _in_progress(settings)
    drill = _drill(attempt.drill_id)
    if attempt.hints_taken >= len(drill.hints):
        fail(_("no more hints: all {count} are taken ('kansoku drill status' shows "
               "them)").format(count=len(drill.hints)))
    given = drill.hints[attempt.hints_taken]
    attempt.hints_taken += 1
    _save(settings, attempt)
    if as_json:
        _print_json({"hint": attempt.hints_taken, "of": len(drill.hints), "cost": given.cost,
                     "text": given(attempt.language)})
        return
    console.print(_("Hint {number}/{count} (-{cost} points): {text}").format(
        number=attempt.hints_taken, count=len(drill.hints), cost=given.cost,
        text=given(attempt.language)), highlight=False)


@app.command("answer", help=_("Answer the drill in progress: the service, the cause category "
                              "and a trace as evidence — or --nothing-wrong. A wrong answer "
                              "costs points; try again."))
def answer(
    service: Annotated[str | None, typer.Option(
        "--service", help=_("The service at fault"), show_default=False)] = None,
    cause: Annotated[str | None, typer.Option(
        "--cause", help=_("The cause category: errors, latency, resources, messaging, "
                          "browser or outage"), show_default=False)] = None,
    trace: Annotated[str | None, typer.Option(
        "--trace", help=_("Evidence: the id of a trace in the explorer that shows the "
                          "fault"), show_default=False)] = None,
    nothing_wrong: Annotated[bool, typer.Option(
        "--nothing-wrong", help=_("Answer that nothing is wrong (no service, cause or "
                                  "trace)"))] = False,
    explorer: Annotated[str | None, typer.Option(
        "--explorer", help=_("The explorer to read the trace from (default: the running "
                             "stack's)"), show_default=False)] = None,
    as_json: Json = False,
    data_dir: DataDir = None,
) -> None:
    from kansoku.drills import model
    from kansoku.drills.scoring import Answer, SavedPhrase, assess, needs_evidence, now

    if nothing_wrong and (service or cause or trace):
        fail(_("--nothing-wrong takes no --service, --cause or --trace — give one or the "
               "other"), code=2)
    if not nothing_wrong:
        if not (service and cause and trace):
            fail(_("an answer needs --service, --cause and --trace (or --nothing-wrong) — "
                   "e.g. --service payments --cause errors --trace 4bf92f35…"), code=2)
        if service not in model.STOPPABLE:
            fail(_("there is no service '{service}' — choose one of: {choices}").format(
                service=service, choices=", ".join(model.STOPPABLE)), code=2)
        if cause not in model.CATEGORIES:
            fail(_("there is no cause category '{cause}' — choose one of: {choices}").format(
                cause=cause, choices=", ".join(model.CATEGORIES)), code=2)
    settings = load_settings(data_dir)
    attempt = _in_progress(settings)
    if attempt.diagnosed is not None:
        fail(_("this drill is already answered right — 'kansoku drill fix' checks your "
               "fix, 'kansoku drill end' ends it"))
    drill = _drill(attempt.drill_id)
    truth = drill.truth(attempt.seed)
    said_cause = model.NOTHING if nothing_wrong else str(cause)
    verdict = None
    if needs_evidence(truth, service, said_cause):
        verdict = _check_evidence(settings, data_dir, explorer, str(trace), truth)
    outcome, message = assess(truth, service, said_cause, verdict)
    attempt.answers.append(Answer(at=now(), service=service, cause=said_cause,
                                  trace_id=trace, outcome=outcome,
                                  message=SavedPhrase.of(message)))
    _save(settings, attempt)
    if as_json:
        _print_json({"outcome": outcome.value, "message": str(message),
                     "right": outcome == "right"})
        return
    colour = "green" if outcome == "right" else "red"
    console.print(f"[{colour}]{outcome.words()}[/]: {message}", highlight=False)


def _check_evidence(settings: StackSettings, data_dir: Path | None, explorer: str | None,
                    trace: str, truth: Truth) -> Verdict:
    import asyncio

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
        fail(_("{error} — or name the explorer with --explorer URL").format(error=exc))

    async def read() -> evidence.Verdict:
        headers = explorer_headers(os.environ.get(EXPLORER_TOKEN_VARIABLE))
        async with httpx.AsyncClient(base_url=url, headers=headers) as client:
            return await evidence.check(client, trace, truth)

    try:
        return asyncio.run(read())
    except evidence.EvidenceError as exc:
        fail(str(exc))


@app.command("fix", help=_("Check your fix: the fault undone, and the shop recovered (the "
                           "chaos probes: the service ready, a checkout paid, its error rate "
                           "and latency back within bounds)."))
def fix(as_json: Json = False, data_dir: DataDir = None) -> None:
    import asyncio

    from kansoku.drills import stack as drill_stack
    from kansoku.drills.scoring import FixCheck, SavedPhrase, now

    settings = load_settings(data_dir)
    attempt = _in_progress(settings)
    fault = _drill(attempt.drill_id).fault(attempt.seed)
    if fault is None:
        fail(_("this drill has nothing to fix — answer it, or end it with "
               "'kansoku drill end'"))
    if attempt.mitigated is not None:
        fail(_("your fix has already been checked and held — 'kansoku drill end' ends the "
               "drill"))
    recovered, detail = asyncio.run(drill_stack.check_fix(_stack(settings, data_dir), fault))
    attempt.fix_checks.append(FixCheck(at=now(), recovered=recovered,
                                       detail=SavedPhrase.of(detail)))
    _save(settings, attempt)
    if as_json:
        _print_json({"recovered": recovered, "detail": str(detail)})
        return
    colour = "green" if recovered else "red"
    verdict = _("fixed") if recovered else _("not fixed")
    console.print(f"[{colour}]{verdict}[/]: {detail}", highlight=False)


def _score_document(score: Score) -> dict[str, Any]:
    from dataclasses import asdict

    return asdict(score)


def _score_table(title: str, score: Score) -> Table:
    table = Table(title=title, title_justify="left", show_header=False)
    table.add_column(_("what"))
    table.add_column(_("value"), justify="right")
    table.add_row(_("points"), f"[bold]{score.points}[/]")
    table.add_row(_("time to detect"), _duration(score.detect_seconds))
    table.add_row(_("time to diagnose"), _duration(score.diagnose_seconds))
    table.add_row(_("time to mitigate"), _duration(score.mitigate_seconds))
    table.add_row(_("hints"), _("-{points} points").format(points=score.hint_points))
    table.add_row(_("wrong tries"), str(score.wrong_tries))
    table.add_row(_("false alarms"), str(score.false_alarms))
    if score.over_time:
        table.add_row(_("over time"), _("yes"))
    return table


@app.command("status", help=_("The drill in progress: its question, the hints taken, your "
                              "answers and fix checks, and the score so far."))
def status(as_json: Json = False, data_dir: DataDir = None) -> None:
    from kansoku.drills.scoring import now, said, score

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
                     # What was said, in the reader's language, as before phrases were
                     # kept: the JSON's shape stays.
                     "answers": [a.model_dump(mode="json") | {"message": said(a.message)}
                                 for a in attempt.answers],
                     "fix_checks": [c.model_dump(mode="json") | {"detail": said(c.detail)}
                                    for c in attempt.fix_checks],
                     "score": _score_document(so_far)})
        return
    console.print(_("[bold]{title}[/] (drill {drill}, seed {seed}) — {elapsed} of "
                    "{limit}").format(title=drill.title(language), drill=drill.id,
                                      seed=attempt.seed, elapsed=_duration(elapsed),
                                      limit=_duration(drill.time_limit)), highlight=False)
    console.print(drill.question(language), highlight=False)
    for number, text in enumerate(hints, 1):
        console.print(_("hint {number}: {text}").format(number=number, text=text),
                      highlight=False)
    for given in attempt.answers:
        console.print(_("answer at {moment}: {outcome} — {message}").format(
            moment=_duration(attempt.seconds_to(given.at)), outcome=given.outcome.words(),
            message=said(given.message)), highlight=False)
    for check in attempt.fix_checks:
        console.print(_("fix at {moment}: {detail}").format(
            moment=_duration(attempt.seconds_to(check.at)), detail=said(check.detail)),
            highlight=False)
    print_table(_score_table(_("Score so far"), so_far))


@app.command("end", help=_("End the drill in progress: switch its fault off (always), stop "
                           "its load, show the score, what the fault was and a debrief "
                           "beside kansoku's own alerts, and keep the score in your "
                           "history."))
def end(
    explorer: Annotated[str | None, typer.Option(
        "--explorer", help=_("The explorer to read the alerts from (default: the running "
                             "stack's)"), show_default=False)] = None,
    as_json: Json = False,
    data_dir: DataDir = None,
) -> None:
    import asyncio

    from kansoku.drills import debrief
    from kansoku.drills import stack as drill_stack
    from kansoku.drills.scoring import now, score

    settings = load_settings(data_dir)
    attempt = _in_progress(settings)
    drill = _drill(attempt.drill_id)
    fault = drill.fault(attempt.seed)
    stack = _stack(settings, data_dir)
    problems: list[str] = []
    undone: i18n.Words = i18n.Phrase(i18n.N_("no fault to undo"))
    if fault is not None:
        try:
            undone = asyncio.run(drill_stack.switch_off(stack, fault))
        except drill_stack.DrillStackError as exc:
            problems.append(_("could not undo the fault ({error}) — 'kansoku flags reset' "
                              "and 'kansoku start NAME' do it by hand").format(error=exc))
    if attempt.load_pid is not None:
        drill_stack.stop_load(attempt.load_pid, attempt.load_started or 0.0)
    ended = now()
    final = score(attempt, drill, ended)
    saved = _keep(settings, stack, attempt, drill, final, ended)
    if saved is not None:
        problems.append(saved)
    _attempt_path(settings).unlink(missing_ok=True)
    truth = drill.truth(attempt.seed)
    fault_words: i18n.Words = fault.describe() if fault else i18n.Phrase(i18n.N_("nothing"))
    explorer_url, changes, note = _alerts(settings, data_dir, explorer, attempt, ended)
    first = debrief.first_alert(changes, truth, attempt.started_at) if note is None else None
    moments = debrief.timeline(attempt, changes, explorer_url)
    if as_json:
        from dataclasses import asdict

        # The fault and what undid it in English, for programs (the history's words).
        _print_json({"drill": drill.id, "seed": attempt.seed,
                     "fault": i18n.in_english(fault_words),
                     "service": truth.service, "cause": truth.category, "flag": truth.flag,
                     "undone": i18n.in_english(undone), "score": _score_document(final),
                     "first_alert": asdict(first) if first else None,
                     "alerts_note": note,
                     "debrief": [asdict(moment) for moment in moments],
                     "problems": problems})
    else:
        answer_words = (_("nothing was wrong") if truth.nothing_wrong
                        else f"{truth.service}, {truth.category}")
        console.print(_("The fault was: {fault} ({answer}). {undone}.").format(
            fault=fault_words, answer=answer_words, undone=undone), highlight=False)
        print_table(_score_table(_("Drill {drill}").format(drill=drill.id), final))
        if note is not None:
            console.print(_("kansoku's alerts: not read ({note})").format(note=note),
                          highlight=False)
        elif first is None:
            console.print(_("kansoku's alerts: none fired during the drill")
                          if truth.nothing_wrong else
                          _("kansoku's alerts: none fired on {service} during the "
                            "drill").format(service=truth.service), highlight=False)
        else:
            console.print(_("kansoku's alerts: {rule} fired on {service} after "
                            "{moment}").format(rule=first.rule, service=first.service,
                                               moment=_duration(first.seconds)),
                          highlight=False)
        for moment in moments:
            link = f"  {moment.link}" if moment.link else ""
            who = _("you") if moment.who == "you" else "kansoku"
            console.print(f"  {_duration(moment.seconds):>7}  {who}{' ' * (8 - cell_len(who))}"
                          f"{moment.what}{link}", highlight=False)
        for problem in problems:
            console.print(_("[yellow]warning:[/] {problem}").format(problem=problem),
                          highlight=False)
    if problems:
        raise typer.Exit(1)


def _alerts(settings: StackSettings, data_dir: Path | None, explorer: str | None,
            attempt: Attempt, ended: datetime) -> tuple[str | None, list[AlertChange],
                                                        str | None]:
    """The explorer's URL, its alert changes during the attempt, and why they could not
    be read (None when they were)."""
    import asyncio

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


@app.command("history", help=_("Your finished drills, newest first: the fault each had and "
                               "how you scored."))
def history(
    user: Annotated[str | None, typer.Option(
        "--user", help=_("Whose history [env: KANSOKU_DRILL_USER; default: your login "
                         "name]"), show_default=False)] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000,
                                       help=_("How many attempts, newest first"))] = 20,
    as_json: Json = False,
    data_dir: DataDir = None,
) -> None:
    import asyncio

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
        fail(_("cannot read the history in {url} ({error}) — is the schema migrated? "
               "(kansoku migrate)").format(url=redact_url(url), error=first_line[:200]))
    if as_json:
        _print_json([attempt.model_dump(mode="json") for attempt in attempts])
        return
    table = Table(title=_("Drills of {user}").format(user=learner), title_justify="left")
    for column in (_("ended"), _("drill"), _("fault"), _("points"), _("detect"),
                   _("diagnose"), _("mitigate"), _("hints"), _("wrong")):
        table.add_column(column)
    for attempt in attempts:
        table.add_row(f"{attempt.ended_at:%Y-%m-%d %H:%M}", attempt.drill_id,
                      _fault_words(attempt),
                      str(attempt.points), _duration(attempt.detect_seconds),
                      _duration(attempt.diagnose_seconds), _duration(attempt.mitigate_seconds),
                      str(attempt.hints_taken), str(attempt.wrong_tries))
    print_table(table)


def _fault_words(attempt: FinishedAttempt) -> str:
    """A finished attempt's fault in the reader's language. The history keeps it in
    English; the drill and seed say it again, as long as the catalogue's drill still has
    that fault (else the English kept is shown)."""
    from kansoku.drills import model

    try:
        fault = model.load(attempt.drill_id).fault(attempt.seed)
    except model.DrillError:
        return attempt.fault
    words = fault.describe() if fault else i18n.Phrase(i18n.N_("nothing"))
    return str(words) if words.english == attempt.fault else attempt.fault


def _learner(user: str | None) -> str:
    return user or os.environ.get("KANSOKU_DRILL_USER") or getpass.getuser()


def _keep(settings: StackSettings, stack: Stack, attempt: Attempt, drill: Drill,
          final: Score, ended: datetime) -> str | None:
    """Add the attempt to the learner's history; None when kept, else why not."""
    import asyncio

    from kansoku.drills import stack as drill_stack
    from kansoku.drills import store
    from kansoku.kit.db import Database, redact_url

    fault = drill.fault(attempt.seed)
    finished = store.FinishedAttempt(
        user_name=attempt.user, drill_id=drill.id, seed=attempt.seed,
        fault=fault.describe().english if fault else "nothing",
        started_at=attempt.started_at,
        ended_at=ended, points=final.points, detect_seconds=final.detect_seconds,
        diagnose_seconds=final.diagnose_seconds, mitigate_seconds=final.mitigate_seconds,
        hints_taken=attempt.hints_taken, hint_points=final.hint_points,
        wrong_tries=final.wrong_tries, false_alarms=final.false_alarms)
    try:
        url = drill_stack.database_url(settings, stack)
    except drill_stack.DrillStackError as exc:
        return _("the score is not kept: {error}").format(error=exc)

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
        return _("the score is not kept in {url} ({error}) — is the schema migrated? "
                 "(kansoku migrate)").format(url=redact_url(url), error=first_line[:200])
    return None
