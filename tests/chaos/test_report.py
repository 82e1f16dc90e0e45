"""The report's words, from reports as the runner leaves them: each probe held or failed
in so many rounds, and every sentence of the summary says what happened plainly. (The
runs against a real stack, in test_runner.py, check the same words in a real report.)
In Japanese for a Japanese reader; the JSON in English for programs."""

from __future__ import annotations

import io

from rich.console import Console

from kansoku.chaos import experiment as model
from kansoku.chaos.probes import ProbeResult
from kansoku.chaos.report import EventPrinter, render
from kansoku.chaos.runner import ABORTED, NOT_RECOVERED, RECOVERED, Report, Round, Step
from kansoku.kit.i18n import N_, Phrase

LISTS, PAYS, READY = "the API lists products", "a customer checks out and pays", "orders is ready"


def _round(phase: str, at: float, *failing: str) -> Round:
    return Round(phase, at, [ProbeResult(probe, probe not in failing,
                                         "paying answered 503" if probe in failing else "ok",
                                         0.1) for probe in (LISTS, PAYS, READY)])


def _report(**fields: object) -> Report:
    report = Report(title="Payments outage", source="payments-outage (shipped)",
                    hypothesis="Customers can browse and buy", probes=[LISTS, PAYS, READY],
                    parameters={})
    for name, value in fields.items():
        setattr(report, name, value)
    return report


def _text(report: Report) -> tuple[dict[str, list[str]], str]:
    """The table's rows (probe -> its cells) and the sentences under it, as shown."""
    out = io.StringIO()
    Console(file=out, width=200, force_terminal=False).print(render(report))
    _title, *lines = out.getvalue().splitlines()  # the title, then the table and the rest
    rows = {cells[0]: cells[1:] for cells in
            ([cell.strip() for cell in line.strip("│").split("│")] for line in lines
             if line.startswith("│"))}
    return rows, " ".join(line.strip() for line in lines if not line.startswith(
        ("│", "┏", "┃", "┡", "└")))


def test_a_payments_outage_in_plain_words() -> None:
    during = [_round("during", 1.0 + n, PAYS) for n in range(20)] + [_round("during", 21, PAYS)]
    report = _report(
        status=RECOVERED, held_before=True, deviated_during=True, recovered=True,
        rollback_seconds=2.1, recovery_seconds=0.2, since_rollback_began_seconds=2.3,
        probe_interval=1.0, duration_seconds=23.4,
        rounds=[_round("before", 0.3), *during, _round("after", 22.9, PAYS),
                _round("after", 23.2)],
        steps=[Step("method", "stop payments", 0.3), Step("method", "wait 20s", 0.6),
               Step("rollback", "start payments", 20.6, seconds=2.1)])

    rows, sentences = _text(report)

    assert rows[LISTS] == ["held", "held in all 21 rounds", "held"]
    assert rows[PAYS] == ["held", "failed in all 21 rounds", "failed in 1 round, then held"]
    assert sentences == (
        "During the method the hypothesis failed in all 21 probing rounds. "
        "The rollback (start payments) took 2.1s. "
        "Recovered: the hypothesis held again 0.2s after the rollback ended (2.3s after it "
        "began). The probes ran every 1s, so the shop may have recovered up to 1s sooner. "
        "Result: recovered in 0.2s; the whole run took 23s.")


def test_some_rounds_failed_no_rollback_and_no_recovery() -> None:
    report = _report(
        status=NOT_RECOVERED, held_before=True, deviated_during=True, recovered=False,
        rollback_seconds=0.0, recovery_timeout=45.0, duration_seconds=52.0,
        undone=["set paymentFailure back to off"],
        rounds=[_round("before", 0.3), _round("during", 0.4), _round("during", 1.0, PAYS),
                _round("during", 1.5, PAYS, READY), _round("after", 2.0, PAYS),
                _round("after", 47.0, PAYS)],
        error="the hypothesis did not hold again within 45s of the rollback")

    rows, sentences = _text(report)

    assert rows[PAYS] == ["held", "failed in 2 of 3 rounds", "still failing (failed in 2 of "
                                                             "2 rounds)"]
    assert rows[READY] == ["held", "failed in 1 of 3 rounds", "held"]
    assert sentences == (
        "During the method the hypothesis failed in 2 of 3 probing rounds. "
        "The experiment has no rollback: kansoku put back what the method changed (set "
        "paymentFailure back to off) in 0.0s. "
        "Not recovered: the hypothesis still failed 45s after the rollback ended. "
        "Result: not recovered; the whole run took 52s. "
        "the hypothesis did not hold again within 45s of the rollback")


def test_a_hypothesis_that_failed_first() -> None:
    report = _report(status=ABORTED, held_before=False, duration_seconds=1.0,
                     rounds=[_round("before", 0.2, PAYS)])

    rows, sentences = _text(report)

    assert rows[PAYS] == ["failed", "not probed", "not probed"]
    assert sentences.startswith(
        "The hypothesis failed before the method: the shop was not in its steady state, so "
        "the experiment stopped there and changed nothing. Result: aborted; the whole run")


def test_progress_lines_say_the_hypothesis_fails() -> None:
    out = io.StringIO()
    printer = EventPrinter(Console(file=out, width=200, force_terminal=False))
    printer(_round("before", 0.3))
    printer(_round("during", 1.4, PAYS))
    printer(_round("during", 2.4, PAYS))  # as the round before: not repeated
    printer(_round("after", 23.0))
    assert out.getvalue().splitlines() == [
        "    0.4s  before   hypothesis holds: the API lists products (ok); a customer "
        "checks out and pays (ok); orders is ready (ok)",
        "    1.5s  during   hypothesis fails: a customer checks out and pays — paying "
        "answered 503",
        "   23.1s  after    hypothesis holds"]


def test_a_japanese_reader_reads_it_in_japanese_and_its_json_stays_english(
        japanese: None) -> None:
    """The report's own words and the run's (steps, probes, what a probe saw) in the
    reader's language; `Report.as_dict`, for programs, in English all the same."""
    pays, ready = model.CheckoutProbe(type="checkout"), model.ReadyProbe(
        type="ready", component="orders")
    refused = Phrase(N_("paying answered {status} ({problem}) after {seconds}s"),
                     status=503, problem="payments-unavailable", seconds="0.20")

    def found(phase: str, at: float, held: bool) -> Round:
        return Round(phase, at, [ProbeResult(pays.label, held, Phrase(N_("ready"))
                                             if held else refused, 0.1),
                                 ProbeResult(ready.label, True, Phrase(N_("ready")), 0.1)])

    report = _report(
        probes=[pays.label, ready.label], status=RECOVERED, held_before=True,
        deviated_during=True, recovered=True, rollback_seconds=2.1, recovery_seconds=0.2,
        since_rollback_began_seconds=2.3, probe_interval=1.0, duration_seconds=23.4,
        rounds=[found("before", 0.3, True), *(found("during", 1.0 + n, False)
                                              for n in range(3)), found("after", 22.9, True)],
        steps=[Step("method", model.Stop(action="stop", component="payments").describe(), 0.3),
               Step("rollback", model.Start(action="start", component="payments").describe(),
                    20.6, seconds=2.1)])

    rows, sentences = _text(report)

    assert rows == {"購入の支払いが済む": ["成立", "全 3 回で失敗", "成立"],
                    "orders が ready": ["成立", "全 3 回で成立", "成立"]}
    assert sentences == (
        "手順の最中、仮説はプローブ全 3 回で成り立ちませんでした。 "
        "ロールバック (payments を起動) に 2.1 秒かかりました。 "
        "回復しました: ロールバックの終了から 0.2 秒後に仮説が再び成り立ちました (開始から "
        "2.3 秒後)。プローブは 1 秒ごとだったので、実際の回復は最大 1 秒早かった可能性があり"
        "ます。 結果: 回復 (0.2 秒)。実行全体で 23 秒でした。")
    document = report.as_dict()
    assert document["probes"] == ["a checkout is paid", "orders is ready"]
    assert [step["action"] for step in document["steps"]] == ["stop payments",
                                                             "start payments"]
    assert document["rounds"][1]["probes"][0]["detail"] == (
        "paying answered 503 (payments-unavailable) after 0.20s")

    out = io.StringIO()
    printer = EventPrinter(Console(file=out, width=200, force_terminal=False))
    printer(report.rounds[1])
    printer(Step("method", model.Stop(action="stop", component="payments").describe(), 0.3))
    assert out.getvalue().splitlines() == [
        "    1.1s  手順の最中     仮説が崩れています: 購入の支払いが済む — 支払いが 503 "
        "(payments-unavailable) を返しました (0.20 秒後)",
        "    0.3s  手順           payments を停止"]
