"""What alerting says to people, in each reader's language (issue 23): an alert's summary,
why it resolved, its value and threshold are kept as sentences and values when the rule
is evaluated (no reader then) and written in the reader's language when read — the
packaged defaults' words and kansoku's own in Japanese for a Japanese reader, a rules
file's own summary as its author wrote it, an alert kept before this in the English it
was kept in. Through the API (Accept-Language) on a real explorer, and straight from a
real store."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import TypeVar

import httpx
import pytest
from fastapi import FastAPI

from kansoku.explorer.alerts import queries
from kansoku.explorer.alerts.evaluator import AlertEvaluator, presented, presented_change
from kansoku.explorer.alerts.models import (
    AlertRow,
    AlertState,
    Measure,
    Quantity,
    Sentence,
    StateChange,
)
from kansoku.explorer.alerts.rules import default_rules_text, in_language, packaged_texts
from kansoku.explorer.alerts.texts import say, written
from kansoku.explorer.app import create_app
from kansoku.explorer.settings import Settings
from kansoku.explorer.slos.budget import burn
from kansoku.explorer.store import TelemetryStore
from kansoku.kit import i18n
from kansoku.kit.i18n import Language
from tests.explorer.alerts.alerting import S, write_requests

T = TypeVar("T")
JAPANESE = {"Accept-Language": "ja"}

#: The packaged HighErrorRate's summary of payments failing half its requests, as a
#: Japanese reader reads it (the catalog's words: a change there changes this).
# Japanese writes its parentheses full width.
FAILING_JA = ("payments は直近 1m にリクエストの 50.0 % が失敗しました（5.0 % を超えると"  # noqa: RUF001
              "通知）。")  # noqa: RUF001
FAILING_EN = ("payments failed 50.0 % of its requests over the last 1m (alert above 5.0 %). "
              "Open its failed traces to see which call broke, and its error logs.")
NO_TRAFFIC_JA = "直近 1m にリクエストがありません。"
NO_TRAFFIC_EN = ("No requests in the last 1m: no traffic, so nothing to judge — which is "
                 "not a fix.")


@pytest.fixture
def store() -> Iterator[TelemetryStore]:
    store = TelemetryStore(":memory:")
    yield store
    store.close()


def in_japanese(read: Callable[[], T]) -> T:
    """What `read` answers for a Japanese reader."""
    i18n.set_language(Language.JAPANESE)
    try:
        return read()
    finally:
        i18n.set_language(Language.ENGLISH)


def fire_and_resolve(evaluator: AlertEvaluator, store: TelemetryStore, now: int) -> None:
    """payments fails half its requests (the packaged HighErrorRate fires after its
    `for: 10s`), then gets no requests at all (it resolves: no traffic)."""
    write_requests(store, service="payments", route="/payments", start_ns=now - 30 * S,
                   count=40, every_ns=S // 2, failed=20)
    evaluator.save(evaluator.evaluate(now))
    evaluator.save(evaluator.evaluate(now + 10 * S))
    assert {a.rule: a.state for a in evaluator.alerts.values()} == {
        "HighErrorRate": AlertState.FIRING}
    evaluator.save(evaluator.evaluate(now + 200 * S))
    assert {a.rule: a.state for a in evaluator.alerts.values()} == {
        "HighErrorRate": AlertState.RESOLVED}


def test_a_packaged_rules_alert_reads_in_the_readers_language(store: TelemetryStore
                                                              ) -> None:
    evaluator = AlertEvaluator(store, None, burn=burn)  # the packaged defaults
    fire_and_resolve(evaluator, store, time.time_ns())
    (kept,) = queries.alert_states(store)
    english, japanese = presented(kept), in_japanese(lambda: presented(kept))
    assert english.summary == FAILING_EN
    assert japanese.summary.startswith(FAILING_JA)
    assert english.resolution == NO_TRAFFIC_EN
    assert japanese.resolution is not None and japanese.resolution.startswith(NO_TRAFFIC_JA)
    assert (japanese.value_text, japanese.threshold_text) == ("50.0 %", "5.0 %")
    # What programs read stays: the English kept in the store, the machine fields.
    assert kept.summary == FAILING_EN and kept.details["resolution"] == NO_TRAFFIC_EN
    assert (japanese.state, japanese.name, japanese.kind) == ("resolved", "HighErrorRate",
                                                              "error_rate")

    history = queries.alert_history(store, since_ns=0)
    assert [(change.from_state, change.to_state) for change in history] == [
        ("firing", "resolved"), ("pending", "firing"), ("inactive", "pending")]
    resolved = in_japanese(lambda: presented_change(history[0]))
    assert resolved.reason is not None and resolved.reason.startswith(NO_TRAFFIC_JA)
    assert resolved.summary is not None and resolved.summary.startswith(FAILING_JA)
    assert presented_change(history[0]).reason == NO_TRAFFIC_EN


def test_a_rules_files_own_summary_stays_as_written_and_kansokus_words_translate(
        store: TelemetryStore, tmp_path: Path) -> None:
    path = tmp_path / "alerts.yaml"
    path.write_text("""
rules:
  - name: HighErrorRate
    kind: error_rate
    window: 1m
    min_requests: 5
    for: 10s
    summary: "{service}: {value} in {window}, our on-call's words."
""")
    evaluator = AlertEvaluator(store, str(path), burn=burn)
    fire_and_resolve(evaluator, store, time.time_ns())
    (kept,) = queries.alert_states(store)
    japanese = in_japanese(lambda: presented(kept))
    assert japanese.summary == "payments: 50.0 % in 1m, our on-call's words."
    assert japanese.resolution is not None and japanese.resolution.startswith(NO_TRAFFIC_JA)


def test_values_read_in_the_readers_language() -> None:
    cores = Quantity(measure=Measure.CORES, amount=0.951)
    assert written(cores, Language.ENGLISH) == "0.95 cores"
    assert written(cores, Language.JAPANESE) == "0.95 コア"
    one, many = (Quantity(measure=Measure.CONNECTIONS, amount=n) for n in (1, 18))
    assert [written(q, Language.ENGLISH) for q in (one, many)] == [
        "1 connection", "18 connections"]
    assert written(many, Language.JAPANESE) == "18 接続"
    assert written(Quantity(measure=Measure.BURN_RATE, amount=14.4),
                   Language.JAPANESE) == "14.4 倍"
    assert written(Quantity(measure=Measure.DURATION, amount=300), Language.JAPANESE) == "5m"


def test_sentences_join_as_each_language_writes() -> None:
    gone = Sentence(text="Its rule is no longer in the rules file.")
    own = Sentence(text="Look at {service}.", values={"service": "cart"})
    assert say([gone, own], Language.ENGLISH) == (
        "Its rule is no longer in the rules file. Look at cart.")
    japanese = say([gone, own], Language.JAPANESE)
    assert japanese.endswith("。Look at cart."), "no space after a Japanese full stop"
    assert "{" not in japanese


def test_only_the_packaged_defaults_words_are_looked_up() -> None:
    """A user's own summary that happens to be a text of the catalogs ("Orders") stays
    as written; the packaged defaults' texts, every one, have Japanese."""
    assert i18n.translated_in(Language.JAPANESE, "Orders") != "Orders"
    assert in_language("Orders", Language.JAPANESE) == "Orders"
    texts = packaged_texts()
    assert len(texts) >= 13 and "Product pages open." in texts
    untranslated = [text for text in texts if in_language(text, Language.JAPANESE) == text]
    assert not untranslated
    assert "{service}" in default_rules_text()


# --- through the API ------------------------------------------------------------------


@pytest.fixture
async def explorer() -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """An explorer on the packaged default rules, its evaluator run by the test."""
    app = create_app(Settings(db_path=":memory:", problems_enabled=False,
                              alerts_check_seconds=3600, alerts_smtp_port=1))
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://explorer") as http:
        yield app, http
    app.state.store.close()


async def test_the_api_answers_in_the_requests_language(
        explorer: tuple[FastAPI, httpx.AsyncClient]) -> None:
    app, http = explorer
    store: TelemetryStore = app.state.store
    fire_and_resolve(app.state.alerts, store, time.time_ns())

    (japanese,) = (await http.get("/api/alerts", headers=JAPANESE)).json()["data"]
    (english,) = (await http.get("/api/alerts")).json()["data"]
    assert japanese["summary"].startswith(FAILING_JA) and english["summary"] == FAILING_EN
    assert japanese["resolution"].startswith(NO_TRAFFIC_JA)
    assert english["resolution"] == NO_TRAFFIC_EN
    assert {key: value for key, value in japanese.items()
            if key not in ("summary", "resolution")} == {
        key: value for key, value in english.items() if key not in ("summary", "resolution")}

    history = (await http.get("/api/alerts/history", headers=JAPANESE)).json()["data"]
    assert history[0]["reason"].startswith(NO_TRAFFIC_JA)
    assert history[0]["to_state"] == "resolved", "states stay the API's values"
    assert (await http.get("/api/alerts/history")).json()["data"][0]["reason"] == (
        NO_TRAFFIC_EN)

    slos = (await http.get("/api/slos", headers=JAPANESE)).json()["data"]
    descriptions = {slo["name"]: slo["description"] for slo in slos}
    assert descriptions["product-page-availability"] == "商品ページが開く。"
    english_slos = (await http.get("/api/slos")).json()["data"]
    assert {slo["name"]: slo["description"] for slo in english_slos}[
        "product-page-availability"] == "Product pages open."


async def test_alerts_kept_before_their_texts_show_the_english_they_were_kept_in(
        explorer: tuple[FastAPI, httpx.AsyncClient]) -> None:
    app, http = explorer
    now = time.time_ns()
    labels = {"service": "payments", "severity": "critical"}
    queries.save_alerts(app.state.store, [AlertRow(
        "old", "HighErrorRate", labels, AlertState.RESOLVED, now - S, now - 60 * S, 0.5,
        "payments failed 50.0 %", {"resolution": "It was kept in English.",
                                   "value_text": "50.0 %", "kind": "error_rate"},
        AlertState.RESOLVED, now)], [StateChange(
            now - S, "old", "HighErrorRate", labels, AlertState.FIRING, AlertState.RESOLVED,
            0.5, "payments failed 50.0 %", "It was kept in English.")])
    (alert,) = (await http.get("/api/alerts", headers=JAPANESE)).json()["data"]
    assert (alert["summary"], alert["resolution"], alert["value_text"]) == (
        "payments failed 50.0 %", "It was kept in English.", "50.0 %")
    (change,) = (await http.get("/api/alerts/history", headers=JAPANESE)).json()["data"]
    assert (change["summary"], change["reason"]) == ("payments failed 50.0 %",
                                                     "It was kept in English.")
