"""`kansoku drill …` end to end on a data directory's flags file, a real explorer (served
over HTTP in a thread) and a real PostgreSQL for the history — and the one plain line
each bad input gets."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from kansoku.cli import app
from kansoku.drills import model, store
from kansoku.explorer.app import create_app
from kansoku.explorer.settings import Settings
from kansoku.faults import flagfile
from kansoku.kit.flagkinds import FLAGS_FILE_VARIABLE
from tests.support import migrated_drills_database, otlp_export, otlp_span, serve_in_thread

#: checkout-fails with this seed: paymentFailure at some share (every seed's fault is a flag).
DRILL = "checkout-fails"


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv(FLAGS_FILE_VARIABLE, raising=False)
    monkeypatch.delenv("KANSOKU_LANG", raising=False)
    monkeypatch.setenv("COLUMNS", "200")
    return tmp_path


@pytest.fixture
async def history_url(postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    url = await migrated_drills_database(postgres_url)
    monkeypatch.setenv("KANSOKU_DATABASE_URL", url)
    return url


@pytest.fixture
def explorer() -> Iterator[str]:
    explorer_app = create_app(Settings(db_path=":memory:"))
    try:
        with serve_in_thread(explorer_app) as url:
            yield url
    finally:
        explorer_app.state.store.close()


def run(data_dir: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["drill", *args, "--data-dir", str(data_dir)])
    return result.exit_code, result.stdout, result.stderr


def drill_json(data_dir: Path, *args: str) -> dict[str, object]:
    code, out, err = run(data_dir, *args, "--json")
    assert code == 0, err
    document: dict[str, object] = json.loads(out)
    return document


def test_list_shows_every_drill_in_both_languages(data_dir: Path) -> None:
    result = CliRunner().invoke(app, ["drill", "list", "--json"])
    listed = {drill["name"]: drill for drill in json.loads(result.stdout)}
    assert list(listed) == list(model.shipped())
    assert listed[DRILL]["title"] == {"ja": "注文が通らない", "en": "Orders do not go through"}
    result = CliRunner().invoke(app, ["drill", "list", "--lang", "ja"])
    assert "注文が通らない" in result.stdout


def test_the_glossary_in_japanese(data_dir: Path) -> None:
    result = CliRunner().invoke(app, ["drill", "glossary", "--lang", "ja"])
    assert result.exit_code == 0
    assert "エラーバジェット" in result.stdout and "検知までの時間" in result.stdout
    listed = json.loads(CliRunner().invoke(app, ["drill", "glossary", "--json"]).stdout)
    assert {"term", "ja", "en"} <= set(listed[0])


def test_a_drill_from_start_to_end(data_dir: Path, explorer: str, history_url: str) -> None:
    drill = model.load(DRILL)
    seed = next(seed for seed in range(100)
                if getattr(drill.fault(seed), "flag", None) == "paymentFailure")
    fault = drill.fault(seed)
    assert isinstance(fault, model.FlagFault)
    started = drill_json(data_dir, "start", DRILL, "--seed", str(seed), "--no-load",
                         "--user", "aiko", "--lang", "ja")
    assert started["question"] == drill.question.ja
    assert flagfile.read_variants(data_dir / "flags.json")["paymentFailure"] == fault.variant
    code, _, err = run(data_dir, "start", "quiet-day", "--no-load")
    assert code == 1 and f"drill {DRILL} is in progress" in err

    assert drill_json(data_dir, "hint")["text"] == drill.hints[0].ja
    wrong = drill_json(data_dir, "answer", "--service", "cart", "--cause", "errors",
                       "--trace", "ab" * 16)
    assert wrong["outcome"] == "wrong-service"

    # A trace that proves nothing, then one with payments' failing span.
    with httpx.Client(base_url=explorer) as client:
        for trace, attributes in ((1, {}), (2, {"feature_flag.key": "paymentFailure"})):
            client.post("/v1/traces", headers={"Content-Type": "application/json"},
                        content=otlp_export("payments", otlp_span(
                            trace, 1, "POST /charges", error=bool(attributes),
                            attributes=attributes))).raise_for_status()
    unproven = drill_json(data_dir, "answer", "--service", "payments", "--cause", "errors",
                          "--trace", f"{1:032x}", "--explorer", explorer)
    assert unproven["outcome"] == "no-evidence"
    right = drill_json(data_dir, "answer", "--service", "payments", "--cause", "errors",
                       "--trace", f"{2:032x}", "--explorer", explorer)
    assert right["outcome"] == "right"
    assert "carries feature_flag.key=paymentFailure" in str(right["message"])

    fixed = drill_json(data_dir, "fix")
    assert fixed == {"recovered": False, "detail": "the fault is still there: the shop "
                     "cannot recover until it is undone"}
    status = drill_json(data_dir, "status")
    assert status["score"] == {
        "points": 100 - 10 - 2 * 10, "detect_seconds": pytest.approx(0, abs=30),
        "diagnose_seconds": pytest.approx(0, abs=30), "mitigate_seconds": None,
        "hint_points": 10, "wrong_tries": 2, "false_alarms": 0, "over_time": False}

    ended = drill_json(data_dir, "end", "--explorer", explorer)
    assert ended["fault"] == f"flag paymentFailure = {fault.variant}"
    # This explorer's rules fired nothing; the debrief lines up the answers, linking the
    # evidence of the right one.
    assert ended["first_alert"] is None and ended["alerts_note"] is None
    debrief = ended["debrief"]
    assert isinstance(debrief, list)
    assert [moment["outcome"] for moment in debrief] == [
        "wrong-service", "no-evidence", "right", None]
    assert debrief[-1]["what"] == "fix: not yet"
    assert debrief[2]["link"] == f"{explorer}/traces/{2:032x}"
    assert (ended["service"], ended["cause"], ended["problems"]) == ("payments", "errors", [])
    assert flagfile.read_variants(data_dir / "flags.json")["paymentFailure"] == "off"
    assert not (data_dir / "drill.json").exists()

    code, out, err = run(data_dir, "history", "--user", "aiko", "--json")
    assert code == 0, err
    (entry,) = [store.FinishedAttempt.model_validate(row) for row in json.loads(out)]
    assert (entry.drill_id, entry.seed, entry.points, entry.wrong_tries) == (DRILL, seed, 70, 2)
    assert entry.fault == f"flag paymentFailure = {fault.variant}"
    code, out, _ = run(data_dir, "history", "--user", "aiko")
    assert code == 0 and DRILL in out and "70" in out
    # The history keeps the fault in English; a Japanese reader reads it in Japanese.
    result = CliRunner().invoke(app, ["--lang", "ja", "drill", "history", "--user", "aiko",
                                      "--data-dir", str(data_dir)])
    assert result.exit_code == 0, result.stderr
    assert f"障害フラグ paymentFailure = {fault.variant}" in result.stdout


def test_a_japanese_learner_reads_the_drill_in_japanese(
        data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KANSOKU_LANG", "ja")
    monkeypatch.setenv("KANSOKU_DATABASE_URL", "postgresql://nobody@127.0.0.1:9/none")
    drill = model.load(DRILL)
    seed = next(seed for seed in range(100)
                if getattr(drill.fault(seed), "flag", None) == "paymentFailure")
    fault = drill.fault(seed)
    assert isinstance(fault, model.FlagFault)
    assert run(data_dir, "start", DRILL, "--seed", str(seed), "--no-load")[0] == 0
    code, out, err = run(data_dir, "answer", "--service", "orders", "--cause", "errors",
                         "--trace", "ab" * 16)
    assert code == 0, err
    assert out.strip() == "サービスが違う: 障害は orders にはありません。"
    code, out, err = run(data_dir, "answer", "--nothing-wrong")
    assert code == 0, err
    assert out.strip() == "見逃し: どこかに異常があります。調査を続けてください。"
    # The JSON keeps the codes, and the message in the reader's language.
    assert drill_json(data_dir, "answer", "--service", "cart", "--cause", "errors",
                      "--trace", "ab" * 16) == {
        "outcome": "wrong-service", "message": "障害は cart にはありません。", "right": False}
    code, out, err = run(data_dir, "fix")
    assert code == 0, err
    assert out.strip() == ("回復していません: 障害はまだ残っています。取り除くまでショップは"
                           "回復できません")

    # Kept as phrases: an English reader of the same attempt reads it in English.
    monkeypatch.setenv("KANSOKU_LANG", "en")
    answers = drill_json(data_dir, "status")["answers"]
    assert isinstance(answers, list)
    assert [(given["outcome"], given["message"]) for given in answers] == [
        ("wrong-service", "orders is not where the fault is."),
        ("missed-fault", "Something is wrong — keep looking."),
        ("wrong-service", "cart is not where the fault is.")]
    monkeypatch.setenv("KANSOKU_LANG", "ja")
    code, out, err = run(data_dir, "status")
    assert code == 0, err
    assert "時点): サービスが違う — 障害は orders にはありません。" in out

    code, out, err = run(data_dir, "end")
    assert code == 1  # the score could not be kept: no database
    assert (f"障害の正体: 障害フラグ paymentFailure = {fault.variant} (payments, errors)。"
            "paymentFailure を off に切り替えました。") in out
    assert "回答: orders, errors — サービスが違う" in out
    assert "回答: 異常なし — 見逃し" in out
    for english in ("wrong-service", "missed-fault", "set to", "flag paymentFailure"):
        assert english not in out


def test_nothing_wrong_is_the_answer_of_a_quiet_day(data_dir: Path, history_url: str
                                                    ) -> None:
    drill_json(data_dir, "start", "quiet-day", "--no-load")
    code, _, err = run(data_dir, "fix")
    assert code == 1 and "this drill has nothing to fix" in err
    assert drill_json(data_dir, "answer", "--nothing-wrong")["outcome"] == "right"
    code, _, err = run(data_dir, "answer", "--nothing-wrong")
    assert code == 1 and "already answered right" in err
    ended = drill_json(data_dir, "end")
    assert ended["fault"] == "nothing" and ended["score"]["points"] == 100  # type: ignore[index]


def test_the_score_is_shown_even_when_it_cannot_be_kept(
        data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KANSOKU_DATABASE_URL", "postgresql://nobody@127.0.0.1:9/none")
    drill_json(data_dir, "start", "quiet-day", "--no-load")
    code, out, _ = run(data_dir, "end")
    assert code == 1
    assert "The fault was: nothing (nothing was wrong)." in out
    assert "warning: the score is not kept in postgresql://nobody@127.0.0.1:9/none" in out
    assert "kansoku's alerts: not read (kansoku is not running" in out
    assert not (data_dir / "drill.json").exists()


@pytest.mark.parametrize(("args", "line"), [
    (("start", "nope"), "error: there is no drill 'nope' — 'kansoku drill list' shows them:"),
    (("start", DRILL, "--lang", "fr"), "error: --lang 'fr' is not a language of the drills"),
    (("start", "service-down", "--no-load"), "error: kansoku is not running (data directory"),
    (("hint",), "error: no drill is in progress in"),
    (("status",), "error: no drill is in progress in"),
    (("end",), "error: no drill is in progress in"),
    (("answer", "--service", "payments"), "error: an answer needs --service, --cause and "
                                          "--trace (or --nothing-wrong)"),
    (("answer", "--service", "bank", "--cause", "errors", "--trace", "x"),
     "error: there is no service 'bank' — choose one of:"),
    (("answer", "--service", "payments", "--cause", "gremlins", "--trace", "x"),
     "error: there is no cause category 'gremlins' — choose one of: errors, latency,"),
    (("answer", "--nothing-wrong", "--service", "payments"),
     "error: --nothing-wrong takes no --service, --cause or --trace"),
])
def test_bad_input_is_one_plain_line(data_dir: Path, args: tuple[str, ...], line: str
                                     ) -> None:
    code, out, err = run(data_dir, *args)
    assert code in (1, 2)
    assert err.startswith(line), err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err + out
    # Nothing was started, not even half.
    assert not (data_dir / "drill.json").exists()


def test_a_malformed_trace_id_is_one_plain_line(data_dir: Path) -> None:
    drill = model.load(DRILL)
    seed = next(seed for seed in range(100)
                if getattr(drill.fault(seed), "flag", None) == "paymentFailure")
    drill_json(data_dir, "start", DRILL, "--seed", str(seed), "--no-load")
    code, _, err = run(data_dir, "answer", "--service", "payments", "--cause", "errors",
                       "--trace", "not-a-trace")
    assert code == 2
    assert err.strip() == ("error: 'not-a-trace' is not a trace id — copy the 32 "
                           "hexadecimal digits from the explorer's trace page")
    # Without a database the score is not kept, but the fault is switched off all the same.
    assert run(data_dir, "end")[0] == 1
    assert flagfile.read_variants(data_dir / "flags.json")["paymentFailure"] == "off"
