"""The Drills page's API in the reader's language: what an answer was told is kept as a
phrase and said to each reader in theirs; an answer kept before phrases were, as
written."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from kansoku.drills import model
from kansoku.drills.scoring import Attempt, write_attempt
from kansoku.explorer.app import create_app
from tests.explorer.problems.test_problems import quick_settings

JAPANESE = {"Accept-Language": "ja"}


async def test_an_answer_is_told_in_each_readers_language(tmp_path: Path) -> None:
    drill_file = tmp_path / "drill.json"
    started = datetime.now(UTC) - timedelta(minutes=3)
    write_attempt(drill_file, Attempt(drill_id="checkout-fails", seed=7, user="aiko",
                                      language="en", started_at=started))
    truth = model.load("checkout-fails").truth(7)
    wrong = next(name for name in model.STOPPABLE if name != truth.service)
    app = create_app(quick_settings(drill_file=drill_file))
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://explorer") as http:
        # Answered by an English reader …
        told = (await http.post("/api/drills/current/answer", json={
            "service": wrong, "cause": "errors", "trace_id": "ab" * 16})).json()["data"]
        assert told == {"outcome": "wrong-service", "outcome_text": "wrong service",
                        "message": f"{wrong} is not where the fault is.", "right": False}
        # … read by a Japanese one.
        kept = (await http.get("/api/drills/current", headers=JAPANESE)).json()["data"]
        (given,) = kept["answers"]
        assert (given["outcome"], given["outcome_text"], given["message"]) == (
            "wrong-service", "サービスが違う", f"障害は {wrong} にはありません。")
        told = (await http.post("/api/drills/current/answer", headers=JAPANESE,
                                json={"nothing_wrong": True})).json()["data"]
        assert (told["outcome"], told["outcome_text"], told["message"]) == (
            "missed-fault", "見逃し", "どこかに異常があります。調査を続けてください。")

        # A file written before phrases were kept: its words as written.
        old = json.loads(drill_file.read_text())
        old["answers"][0]["message"] = "written in English once"
        old["fix_checks"] = [{"at": started.isoformat(), "recovered": False,
                              "detail": "not yet"}]
        drill_file.write_text(json.dumps(old))
        kept = (await http.get("/api/drills/current", headers=JAPANESE)).json()["data"]
        assert [given["message"] for given in kept["answers"]] == [
            "written in English once", "どこかに異常があります。調査を続けてください。"]
        assert kept["fix_checks"][0]["detail"] == "not yet"
    app.state.store.close()
