"""The explorer in two languages (issue 23): the page shell holds no text outside the
catalogs; the scripts show no literal text outside `_()` / `ngettext()`, and every text
they mark is one the catalogs hold; a page carries its scripts' texts in its language;
the problems the API explains are explained in the reader's language. In Chromium,
every explorer page in Japanese, at a laptop's width and a phone's, fits the screen and
has no empty heading, button, link or column title (screenshots in
test-artifacts/screenshots/ja-explorer-<page>-<width>.png).

The rule for the scripts (`_shown_literals`): a string literal a person would read — two
words of letters in a row ("No trace matches"), or a capitalised word ("Service") — must
be the text argument of `_()` or `ngettext()`. Attribute values a program reads (`class:`),
"use strict", and the few names that read the same in every language (`AS_THEY_ARE`) are
left out, as are class names (a literal after `class:` or `className =`). A literal of
one lowercase word ("traces") is not caught by the rule: the Japanese screenshots are
where such a word would show.
"""

from __future__ import annotations

import asyncio
import enum
import json
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from jinja2 import nodes
from playwright.async_api import Browser

from kansoku.drills import model
from kansoku.drills.scoring import Attempt, Outcome, write_attempt
from kansoku.explorer import pages
from kansoku.explorer.alerts.models import AlertState
from kansoku.explorer.app import create_app, thresholds
from kansoku.explorer.common.spans import SpanKind, SpanStatus
from kansoku.explorer.metrics.models import Instrument
from kansoku.explorer.problems.detector import Thresholds, clearing_values, presented
from kansoku.explorer.problems.models import (
    ImpactUnit,
    ProblemKind,
    ProblemState,
    StoredProblem,
)
from kansoku.explorer.rum.models import Rating
from kansoku.kit import i18n, semconv
from kansoku.kit.i18n import Language
from tests.browser import BrowserPage, served
from tests.explorer.problems.test_problems import PROTOBUF, export, n_plus_one, quick_settings
from tests.explorer.test_layout import metrics_of_the_last_hour
from tests.explorer.test_pages import telemetry_of_one_request

STATIC = Path(pages.__file__).parent / "static"
TEMPLATES = Path(pages.__file__).parent / "templates"

# --- the page shell ------------------------------------------------------------------

#: Words the template may hold as they are: the product's name and a code.
TEMPLATE_AS_THEY_ARE = {"kansoku", "explorer", "enduser", "id"}
READ_ATTRIBUTES = ("alt", "title", "placeholder", "aria-label")
_TAG = re.compile(r"<[^>]*>", re.S)
_READ_ATTRIBUTE = re.compile(rf'\b(?:{"|".join(READ_ATTRIBUTES)})="([^"]*)"')
_SCRIPT = re.compile(r"<script\b.*?</script>", re.S)
_LETTERS = re.compile(r"[^\W\d_]+")


def _template_text(source: str) -> set[str]:
    """The words a template writes as they are: text between its tags and the values of
    attributes people read, outside `{% trans %}` and `_()` (expressions left out)."""
    tree = pages.templates.env.parse(source)
    text = "".join(node.data if isinstance(node, nodes.TemplateData) else "\x00"
                   for node in tree.find_all((nodes.TemplateData, nodes.Expr)))
    text = _SCRIPT.sub(" ", re.sub(r"<!--.*?-->", "", text, flags=re.S))
    read = " ".join(value for tag in _TAG.findall(text) for value in _READ_ATTRIBUTE.findall(tag))
    between = _TAG.sub(" ", text)
    words = _LETTERS.findall(between + " " + re.sub(r"&\w+;", " ", read))
    return {word for word in words if word not in TEMPLATE_AS_THEY_ARE}


def test_the_page_shell_holds_no_text_outside_the_catalogs() -> None:
    found = {path.name: sorted(words) for path in TEMPLATES.glob("*.html")
             if (words := _template_text(path.read_text()))}
    assert not found, f"text outside {{% trans %}} or _(): {found}"


def test_the_shell_check_finds_text_between_tags_and_in_attributes_people_read() -> None:
    assert _template_text('<p class="x">Loading {{ n }}</p>') == {"Loading"}
    assert _template_text('<input placeholder="words here">') == {"words", "here"}
    assert _template_text('<label>{{ _("Service") }} <select name="s"></select></label>'
                          ) == set()


# --- the scripts ---------------------------------------------------------------------

#: Literals that read the same in every language: the instrumentations' names, and
#: commands and API paths, which are typed as they are.
AS_THEY_ARE = {"OpenTelemetry", "AWS X-Ray SDK", "GET /api/alerts", "kansoku drill start NAME",
               "Content-Type"}
#: What makes a literal a text for people: two words of letters, or a capitalised word.
_TEXT = re.compile(r"[^\W\d_]{2,}\s+[^\W\d_]{2,}|^\s*[A-Z][a-z]{2,}")
_MARKERS = ("_", "ngettext")


def _literals(source: str) -> Iterator[tuple[int, str, str, str]]:
    """Every string literal of a script, as (line, its text, the code since the literal
    before it, the last 60 characters of code before it with literals as "");
    a template literal's text without its ${…} parts. Comments are skipped; the
    scripts' regular expressions hold no quote, so they read as code."""
    index, line, before, context = 0, 1, "", ""
    while index < len(source):
        char = source[index]
        if source.startswith("//", index):
            index = source.index("\n", index) if "\n" in source[index:] else len(source)
            continue
        if source.startswith("/*", index):
            end = source.index("*/", index) + 2
            line += source.count("\n", index, end)
            index = end
            continue
        if char in "\"'`":
            start, index, text, depth = line, index + 1, [], 0
            while index < len(source):
                current = source[index]
                if current == "\\":
                    text.append(source[index:index + 2])
                    index += 2
                    continue
                if char == "`" and source.startswith("${", index):
                    depth, index = 1, index + 2
                    while depth and index < len(source):
                        depth += {"{": 1, "}": -1}.get(source[index], 0)
                        index += 1
                    text.append(" ")
                    continue
                if current == char:
                    break
                line += current == "\n"
                text.append(current)
                index += 1
            yield start, "".join(text), before, context
            before, context = "", (context + '""')[-60:]
            index += 1
            continue
        line += char == "\n"
        before, context = (before + char)[-40:], (context + char)[-60:]
        index += 1


def _shown_literals(source: str) -> list[tuple[int, str]]:
    """The literals a person would read that are not the text of `_()` / `ngettext()`."""
    found = []
    previous_was_marked_text = False
    for line, text, before, context in _literals(source):
        code = before.rstrip()
        marked = bool(re.search(rf"\b(?:{'|'.join(_MARKERS)})\($", code))
        plural_of_marked = previous_was_marked_text and code == ","
        previous_was_marked_text = marked
        if marked or plural_of_marked or text in AS_THEY_ARE or text == "use strict":
            continue
        if re.search(r"\bclass(?:Name)?\s*[:=][^,{}]*$", context):  # class names, not text
            continue
        if _TEXT.search(text):
            found.append((line, text))
    return found


def test_no_script_shows_a_literal_text_outside_the_catalogs() -> None:
    found = {path.name: _shown_literals(path.read_text()) for path in STATIC.glob("*.js")}
    found = {name: literals for name, literals in found.items() if literals}
    assert not found, f"texts to wrap in _() or ngettext(): {found}"


def test_the_script_check_finds_a_text_and_passes_a_marked_one() -> None:
    source = """
      // A comment "Not a text" is skipped.
      el("p", { class: "muted note" }, "No trace matches.", _("Wrapped text"));
      el("h2", {}, `${count} spans in ${services}`, ngettext("{n} call", "{n} calls", n));
      const label = "Service";
    """
    assert [text for _line, text in _shown_literals(source)] == [
        "No trace matches.", "  spans in  ", "Service"]


def test_every_text_a_script_marks_is_extracted_for_the_catalogs() -> None:
    """A `_("…")` inside a template literal's ${…}, or inside another marked call's
    values, is not seen by Babel: it would never be translated."""
    extracted = {text if isinstance(text, str) else text[0] for text in pages.script_texts()}
    marked = {json.loads(f'"{text}"') for path in STATIC.glob("*.js")
              for text in re.findall(r'\b(?:_|ngettext)\("((?:[^"\\]|\\.)*)"', path.read_text())}
    marked -= {"…"}  # the comment of explorer.js naming the markers
    assert marked and not marked - extracted, f"not extracted: {sorted(marked - extracted)}"


#: The API's words a script shows people (StrEnum values), by the script and the name of
#: its object of words for them: each value must have its word, in the catalogs.
SHOWN_VOCABULARIES: tuple[tuple[str, str, type[enum.StrEnum], set[str]], ...] = (
    ("alerts.js", "stateLabel", AlertState, set()),
    ("alerts.js", "ruleStateLabel", AlertState, {"resolved"}),  # a rule is never resolved
    ("problems.js", "problemStateLabel", ProblemState, set()),
    ("traces.js", "SPAN_KINDS", SpanKind, set()),
    ("traces.js", "SPAN_STATUSES", SpanStatus, set()),
    ("metrics.js", "INSTRUMENTS", Instrument, set()),
    ("rum.js", "RATINGS", Rating, set()),
    ("drills.js", "OUTCOMES", Outcome, set()),
)


def _words_of(script: str, name: str) -> dict[str, str]:
    """A script's object of words `const NAME = { value: _("Word"), … }`: value → word."""
    source = (STATIC / script).read_text()
    found = re.search(rf"const {name} = \{{(.*?)\}};", source, re.S)
    assert found, f"{script} has no {name}"
    return dict(re.findall(r'"?([\w-]+)"?: _\("([^"]+)"\)', found.group(1)))


@pytest.mark.parametrize(("script", "name", "vocabulary", "unshown"), SHOWN_VOCABULARIES,
                         ids=[f"{script}:{name}" for script, name, *_ in SHOWN_VOCABULARIES])
def test_the_apis_words_a_script_shows_are_in_the_readers_language(
        script: str, name: str, vocabulary: type[enum.StrEnum], unshown: set[str]) -> None:
    """The API keeps its lower-case values (firing, ongoing, server, ok …); a page says
    each in the reader's language — a value without its word would show in English."""
    words = _words_of(script, name)
    assert set(words) == {str(value) for value in vocabulary} - unshown
    i18n.set_language(Language.JAPANESE)
    try:
        japanese = pages.script_messages()
    finally:
        i18n.set_language(Language.ENGLISH)
    assert all(japanese.get(word) not in (None, word) for word in words.values()), words


def test_a_page_carries_its_scripts_texts_in_its_language() -> None:
    i18n.set_language(Language.JAPANESE)
    try:
        messages = pages.script_messages()
    finally:
        i18n.set_language(Language.ENGLISH)
    assert len(messages) == len(pages.script_texts()) > 200
    assert messages["Service map"] == "サービスマップ"
    assert messages["{n} call"] == ["{n} 回の呼び出し"], "Japanese has one plural form"
    assert all(value and value != key for key, value in messages.items()
               if key not in ("SLO {name}", "{service} (pid {pid})", "{source} ({spans})"))
    assert pages.script_messages() == {}, "English is the scripts' own"


async def test_the_apis_problems_a_page_shows_are_in_the_readers_language() -> None:
    """The pages show a problem's `detail` (explorer.js: "Could not load this page: …"):
    in the reader's language, its `type`, `status` and fields as they are."""
    app = create_app(quick_settings(problems_enabled=False, alerts_enabled=False))
    japanese = {"Accept-Language": "ja"}
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://explorer") as http:
        missing = await http.get(f"/api/spans/{'ab' * 16}", headers=japanese)
        assert missing.status_code == 404
        body = missing.json()
        assert body["detail"] == f"トレース {'ab' * 16} のスパンはまだ届いていません。"
        assert (body["title"], body["type"]) == (
            "見つかりません", "https://kansoku.dev/problems/trace-not-found")
        zero = (await http.get(f"/api/spans/{'0' * 32}", headers=japanese)).json()
        assert zero["detail"].startswith("すべてゼロのトレース ID はトレースではありません")
        bad = (await http.get("/api/problems", params={"trace_id": "xyz"},
                              headers=japanese)).json()
        assert bad["detail"] == "正しくない項目があります: trace_id。"
        assert (bad["title"], bad["errors"][0]["field"]) == ("処理できない内容", "trace_id")
        off = (await http.get("/api/alerts", headers=japanese)).json()
        assert off["detail"].startswith("このエクスプローラーではアラートが無効です")
        assert (await http.get("/api/slos", headers=japanese)).json()["detail"].startswith(
            "SLO はアラートと一緒に評価されます")
        nowhere = (await http.get("/api/nowhere", headers=japanese)).json()
        assert nowhere["detail"] == "/api/nowhere には何もありません。"
        english = (await http.get(f"/api/spans/{'ab' * 16}")).json()
        assert english["detail"] == f"No spans of trace {'ab' * 16} have arrived."
        assert english["title"] == "Not Found"
    app.state.store.close()


def test_a_problem_is_explained_in_the_readers_language() -> None:
    _hold, values = clearing_values(ProblemKind.N_PLUS_ONE_DB, quick_settings_thresholds(), 15)
    stored = StoredProblem(
        fingerprint="f", kind=ProblemKind.N_PLUS_ONE_DB, service="catalog",
        operation="GET /products", target="SELECT * FROM books WHERE id = $1",
        first_seen_ns=1, last_seen_ns=2, occurrences=3, impact=340.0,
        impact_unit=ImpactUnit.MS, example_trace_id="ab" * 16,
        details={"count": 12, "total_ms": 340, "clears_when": "Clears when …",
                 "clears_when_values": dict(values)})
    english = presented(stored)
    i18n.set_language(Language.JAPANESE)
    try:
        japanese = presented(stored)
    finally:
        i18n.set_language(Language.ENGLISH)
    assert english.title == "N+1 queries" and japanese.title == "N+1 クエリ"
    assert "ran the same query 12 times" in english.explanation
    assert "同じクエリを 12 回続けて実行しました" in japanese.explanation
    assert japanese.clears_when.startswith("新しいトレースに 60 秒現れなければ解消します")
    assert japanese.impact_text == "繰り返しのクエリに 340 ms (3 回の発生で)"
    # Machine fields stay as they are.
    assert (japanese.kind, japanese.state, japanese.service) == (
        english.kind, english.state, english.service)


def quick_settings_thresholds() -> Thresholds:
    return thresholds(quick_settings())


# --- the Drills page's API -------------------------------------------------------------

def _attempt(drill_id: str = "checkout-fails") -> Attempt:
    return Attempt(drill_id=drill_id, seed=7, user="learner", language="en",
                   started_at=datetime.now(UTC) - timedelta(minutes=3))


async def test_the_drills_api_lists_shows_gives_hints_and_checks_answers(tmp_path: Path
                                                                          ) -> None:
    drill_file = tmp_path / "drill.json"
    app = create_app(quick_settings(drill_file=drill_file))
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://explorer") as http:
        listed = (await http.get("/api/drills", headers={"Accept-Language": "ja"})
                  ).json()["data"]
        assert [drill["id"] for drill in listed] == list(model.shipped())
        checkout = model.load("checkout-fails")
        first = next(drill for drill in listed if drill["id"] == "checkout-fails")
        assert first["question"] == checkout.question("ja")
        assert first["start_command"] == "kansoku drill start checkout-fails"
        assert (await http.get("/api/drills/current")).json() == {"data": None}
        assert (await http.post("/api/drills/current/hint")).status_code == 404

        write_attempt(drill_file, _attempt())
        current = (await http.get("/api/drills/current")).json()["data"]
        assert current["question"] == checkout.question("en")
        assert current["hints"] == [] and current["score"]["points"] == 0
        hinted = (await http.post("/api/drills/current/hint",
                                  headers={"Accept-Language": "ja"})).json()["data"]
        assert hinted["hints"] == [checkout.hints[0]("ja")]
        assert hinted["score"]["hint_points"] == checkout.hints[0].cost

        truth = checkout.truth(7)
        assert truth.service is not None
        wrong = next(name for name in model.STOPPABLE if name != truth.service)
        answer = await http.post("/api/drills/current/answer", json={
            "service": wrong, "cause": "errors", "trace_id": "ab" * 16})
        assert answer.json()["data"]["outcome"] == "wrong-service"
        assert not answer.json()["data"]["right"]
        refused = await http.post("/api/drills/current/answer", json={
            "service": "nowhere", "cause": "errors", "trace_id": "ab" * 16})
        assert refused.status_code == 422
        half = await http.post("/api/drills/current/answer", json={"service": wrong})
        assert half.status_code == 422
        # "Nothing is wrong" takes nothing else: both at once is no answer.
        both = await http.post("/api/drills/current/answer", json={
            "nothing_wrong": True, "service": wrong, "cause": "errors",
            "trace_id": "ab" * 16})
        assert both.status_code == 422
        kept = (await http.get("/api/drills/current")).json()["data"]
        assert [given["outcome"] for given in kept["answers"]] == ["wrong-service"]
        assert kept["score"]["wrong_tries"] == 1
    app.state.store.close()


# --- every page in Japanese, in Chromium -----------------------------------------------

#: Each page (path, a name for its screenshots), and what shows once it has drawn.
PAGES = (("/", "services", "table"), ("/services/gateway", "service", "table"),
         ("/map", "map", "svg.map"), ("/traces", "traces", "ol.traces"),
         ("/traces/4bf92f3577b34da6a3ce929d0e0e4736", "trace", "ol.waterfall"),
         ("/problems", "problems", "ol.problems"), ("/alerts", "alerts", "table.rules"),
         ("/slos", "slos", "ol.slos"), ("/logs", "logs", "table"),
         ("/charts", "charts", "section.metric-group svg.chart"), ("/browser", "browser", "h2"),
         ("/drills", "drills", "section.drill.current"),
         ("/approaches", "approaches", "dl.trade-offs"))
WIDTHS = (1280, 390)

#: Elements that must not be empty: headings, buttons, links, column titles.
_EMPTY = """() => [...document.querySelectorAll('h1, h2, h3, button, a, th, label, option')]
  .filter((node) => node.getClientRects().length && !node.textContent.trim()
    && !node.getAttribute('aria-label') && !node.querySelector('svg, img'))
  .map((node) => node.outerHTML.slice(0, 120))"""
_OVERFLOW = """() => ({ page: document.documentElement.scrollWidth,
  screen: document.documentElement.clientWidth,
  wide: [...document.querySelectorAll('body *')].filter((node) => {
    const box = node.getBoundingClientRect();
    return box.width && box.right > document.documentElement.clientWidth + 1
      && !node.closest('.table-box, .map-box');
  }).map((node) => node.tagName + '.' + node.className).slice(0, 5) })"""


@pytest.fixture
def drill_file(tmp_path: Path) -> Path:
    path = tmp_path / "drill.json"
    write_attempt(path, _attempt())
    return path


async def test_every_page_in_japanese_fits_and_has_no_empty_box(
        browser: Browser, drill_file: Path) -> None:
    app = create_app(quick_settings(drill_file=drill_file))
    spans, logs = telemetry_of_one_request()
    async with served(app) as base:
        async with httpx.AsyncClient(base_url=base) as http:
            for path, body in (("/v1/traces", spans), ("/v1/logs", logs),
                               ("/v1/traces", export(n_plus_one("catalog"))),
                               ("/v1/metrics", metrics_of_the_last_hour(time.time_ns()))):
                assert (await http.post(path, content=body, headers=PROTOBUF)
                        ).status_code == 200
            deadline = time.monotonic() + 10
            while not (await http.get("/api/problems")).json()["data"]:
                assert time.monotonic() < deadline, "the N+1 was not detected"
                await asyncio.sleep(0.1)
        problems: dict[str, object] = {}
        for width in WIDTHS:
            context = await browser.new_context(
                viewport={"width": width, "height": 900}, locale="ja-JP",
                extra_http_headers={"Accept-Language": "ja,en;q=0.5"})
            try:
                page = BrowserPage(await context.new_page(), test_name=f"ja-{width}")
                for path, name, drawn in PAGES:
                    await page.page.goto(f"{base}{path}")
                    await page.page.wait_for_function(
                        "() => !document.getElementById('content').textContent"
                        ".includes('読み込み中')")
                    await page.page.locator(drawn).first.wait_for()
                    await page.page.wait_for_load_state("networkidle")
                    assert await page.page.get_attribute("html", "lang") == "ja"
                    assert "読み込み中" not in await page.page.locator("#content").inner_text()
                    await page.screenshot(f"ja-explorer-{name}-{width}")
                    empty = await page.page.evaluate(_EMPTY)
                    fit = await page.page.evaluate(_OVERFLOW)
                    if empty or fit["page"] > fit["screen"] or fit["wide"]:
                        problems[f"{path} at {width}"] = {"empty": empty, "fit": fit}
                assert page.errors == []
            finally:
                await context.close()
    app.state.store.close()
    assert not problems, problems


async def test_the_language_switch_keeps_the_page_and_its_search(page: BrowserPage) -> None:
    app = create_app(quick_settings())
    async with served(app) as base:
        browser = page.page
        await browser.goto(f"{base}/traces?lookback=6h")
        await browser.get_by_role("button", name="Search").wait_for()
        await browser.get_by_label("Operation").fill("GET /cart")
        await browser.get_by_role("button", name="Search").click()
        await browser.wait_for_url(re.compile("operation="))
        await browser.get_by_role("link", name="日本語").click()
        await browser.get_by_role("button", name="検索").wait_for()
        assert "/traces?" in browser.url and "lookback=6h" in browser.url
        assert await browser.get_by_label("オペレーション").input_value() == "GET /cart"
        assert await browser.get_by_role("link", name="トレース").get_attribute(
            "aria-current") == "page"
        assert await browser.get_by_label("期間 (UTC)").input_value() == "6h"
        # The choice is kept: the next page is Japanese too, whatever the browser says.
        await browser.goto(f"{base}/map")
        assert await browser.locator("h1").inner_text() == "サービスマップ"
        await browser.get_by_role("link", name="English").click()
        await browser.locator("h1", has_text="Service map").wait_for()
    app.state.store.close()
    assert page.errors == []


async def test_the_drills_page_gives_a_hint_and_checks_an_answer(page: BrowserPage,
                                                                 drill_file: Path) -> None:
    """The drill in progress on its page: a hint taken costs its points, a wrong answer
    says so and counts as a wrong try; the page names the commands it cannot run."""
    app = create_app(quick_settings(drill_file=drill_file))
    checkout = model.load("checkout-fails")
    truth = checkout.truth(7)
    wrong = next(name for name in model.STOPPABLE if name != truth.service)
    async with served(app) as base:
        browser = page.page
        await browser.goto(f"{base}/drills")
        current = browser.get_by_role("region", name="Drill in progress")
        await current.get_by_text(checkout.question("en")).wait_for()
        assert await browser.get_by_role("heading", name=checkout.title("en")).count() == 2
        await current.get_by_role("button", name=re.compile(r"Take a hint")).click()
        await current.get_by_text(checkout.hints[0]("en")).wait_for()
        await current.get_by_label("Service at fault").select_option(wrong)
        await current.get_by_label("Cause").select_option("errors")
        await current.get_by_label("Evidence: a trace id").fill("ab" * 16)
        await current.get_by_role("button", name="Answer", exact=True).click()
        await current.get_by_role("status").get_by_text(re.compile("^wrong service: ")
                                                        ).wait_for()
        score = current.locator("table.score")
        await score.get_by_role("row", name=re.compile("Wrong tries 1")).wait_for()
        assert "kansoku drill end" in await current.inner_text()
        await page.screenshot("explorer-drills")
    app.state.store.close()
    assert page.errors == []


async def test_the_login_page_and_the_funnel_speak_the_readers_language() -> None:
    app = create_app(quick_settings(problems_enabled=False, alerts_enabled=False, auth=True,
                                    password="explorer-login-pass", token="t" * 32))
    japanese = {"Accept-Language": "ja"}
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="https://explorer.test") as http:
        form = await http.get("/login", headers=japanese)
        assert '<html lang="ja">' in form.text and "パスワード" in form.text
        wrong = await http.post("/login", headers=japanese,
                                data={"password": "guess", "next": "/"})
        assert wrong.status_code == 401 and "パスワードが違います。" in wrong.text
        assert "Password" in (await http.get("/login")).text
        # A script whose session ended is told so in its reader's language.
        refused = await http.get("/api/funnel", headers=japanese)
        assert refused.status_code == 401
        assert refused.json()["detail"].startswith("エクスプローラーにはログインが必要です")
        assert refused.json()["title"] == "認証が必要です"
        steps = (await http.get("/api/funnel", headers={
            **japanese, "Authorization": f"Bearer {'t' * 32}"})).json()["data"]
        assert [step["step"] for step in steps] == [
            "商品閲覧", "カート追加点数", "注文", "支払い済みの注文"]
        assert steps[0]["metric"] == semconv.METRIC_PRODUCT_VIEWS, "machine fields stay"
    app.state.store.close()
