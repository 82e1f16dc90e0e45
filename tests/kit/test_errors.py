"""Errors reach callers as RFC 9457 problem+json with the request id, never a traceback."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import httpx
import pytest

from kansoku.kit.errors import field_message
from tests.kit.apps import make_app


def client(*, problems_in_readers_language: bool = False) -> httpx.AsyncClient:
    app = make_app(problems_in_readers_language=problems_in_readers_language)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app,
                                                           raise_app_exceptions=False),
                             base_url="http://test")


JAPANESE = {"Accept-Language": "ja"}


async def test_details_follow_the_reader_and_titles_only_where_pages_show_them() -> None:
    """Every app words its problems' details in the request's language (the shop puts a
    refusal next to its field); the standard title stays English but in an app whose
    pages show it (the explorer) — `type`, `status` and field names as they are."""
    async with client() as http:
        shop = (await http.get("/nowhere", headers=JAPANESE)).json()
    assert (shop["title"], shop["detail"]) == ("Not Found", "/nowhere には何もありません。")
    async with client(problems_in_readers_language=True) as http:
        missing = (await http.get("/nowhere", headers=JAPANESE)).json()
        invalid = (await http.get("/items", params={"limit": 0}, headers=JAPANESE)).json()
        refused = await http.delete("/items", headers=JAPANESE)
        raised = (await http.get("/teapot", headers=JAPANESE)).json()
        unasked = (await http.get("/nowhere")).json()
    assert (missing["title"], missing["detail"]) == ("見つかりません",
                                                     "/nowhere には何もありません。")
    assert missing["type"].endswith("/not-found") and missing["status"] == 404
    assert invalid["detail"] == "正しくない項目があります: limit。"
    assert invalid["title"] == "処理できない内容" and invalid["errors"][0]["field"] == "limit"
    assert refused.json()["detail"] == (
        "/items では DELETE は使えません。使えるのは GET, POST です。")
    assert refused.headers["allow"] == "GET, POST"
    # A raised problem's detail is its raiser's words; its own title stays its own.
    assert raised["detail"] == "This endpoint only brews tea." and raised["flavour"] == "sencha"
    assert unasked["detail"] == "There is nothing at /nowhere."


async def test_unknown_route_is_a_problem_with_request_id() -> None:
    async with client() as http:
        response = await http.get("/nowhere")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == 404
    assert body["title"] == "Not Found"
    assert body["detail"] == "There is nothing at /nowhere."
    assert body["request_id"] == response.headers["x-request-id"]
    assert len(body["request_id"]) == 32


async def test_validation_error_names_the_field() -> None:
    async with client() as http:
        response = await http.get("/items", params={"limit": 0})
    assert response.status_code == 422
    body = response.json()
    assert body["detail"] == "Some fields are not valid: limit."
    assert body["errors"][0]["field"] == "limit"
    assert body["errors"][0]["location"] == "query"
    assert "greater than or equal to 1" in body["errors"][0]["message"]


async def test_raised_problem_keeps_its_status_and_extensions() -> None:
    async with client() as http:
        response = await http.get("/teapot")
    assert response.status_code == 418
    body = response.json()
    assert body["type"].endswith("/teapot")
    assert body["flavour"] == "sencha"


async def test_unhandled_exception_is_a_500_problem_without_details(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.ERROR):
        async with client() as http:
            response = await http.get("/boom")
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert "hunter2" not in response.text
    assert "Traceback" not in response.text
    assert response.json()["request_id"] == response.headers["x-request-id"]
    # The details are for us: logged, with the traceback.
    assert any(record.exc_info for record in caplog.records)


async def test_callers_request_id_is_kept_if_well_formed() -> None:
    async with client() as http:
        kept = await http.get("/items", headers={"X-Request-ID": "abc-123"})
        replaced = await http.get("/items", headers={"X-Request-ID": "bad\nid <script>"})
    assert kept.headers["x-request-id"] == "abc-123"
    assert replaced.headers["x-request-id"] != "bad\nid <script>"
    assert len(replaced.headers["x-request-id"]) == 32


async def test_method_not_allowed_says_which_method() -> None:
    async with client() as http:
        response = await http.delete("/items")
    assert response.status_code == 405
    assert response.json()["detail"] == "DELETE is not allowed on /items. It takes GET, POST."
    assert response.headers["allow"] == "GET, POST"


async def test_a_body_that_is_not_json_is_a_400_naming_where() -> None:
    async with client() as http:
        response = await http.post("/items", content=b'{"name": "x",, "quantity": 1}',
                                   headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["type"].endswith("/invalid-json")
    assert body["detail"] == ("The body is not valid JSON at position 13: expecting "
                              "property name enclosed in double quotes.")
    assert body["request_id"] == response.headers["x-request-id"]


async def test_a_body_that_is_not_utf8_is_a_400_not_a_parse_error() -> None:
    async with client() as http:
        response = await http.post("/items", content=b'{"name": "\xff"}',
                                   headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.json()["type"].endswith("/invalid-json")
    assert "not UTF-8" in response.json()["detail"]


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "streamed"])
async def test_a_body_over_the_limit_is_a_413_problem(declared: bool) -> None:
    big = b'{"name": "' + b"x" * (2 * 1024 * 1024) + b'", "quantity": 1}'

    async def streamed() -> AsyncIterator[bytes]:
        for start in range(0, len(big), 65536):
            yield big[start:start + 65536]

    async with client() as http:
        response = await http.post("/items", content=big if declared else streamed(),
                                   headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["detail"] == "The request body is larger than 1,024 KiB: send less."


@pytest.mark.parametrize("item", [{"name": "a\u0000b", "quantity": 1},
                                  {"name": "a", "quantity": 2**31}],
                         ids=["nul-in-text", "past-int32"])
async def test_what_postgresql_cannot_hold_is_a_422_naming_the_field(
        item: dict[str, object]) -> None:
    async with client() as http:
        response = await http.post("/items", json=item)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] in ("name", "quantity")


async def test_the_openapi_document_describes_every_problem() -> None:
    async with client() as http:
        document = (await http.get("/openapi.json")).json()
    responses = document["paths"]["/items"]["post"]["responses"]
    assert set(responses) == {"201", "400", "413", "422", "503"}
    for status in ("400", "413", "503"):
        assert responses[status]["content"] == {
            "application/problem+json": {"schema": {"$ref": "#/components/schemas/ProblemDetails"}}}
    assert responses["422"]["content"]["application/problem+json"]["schema"] == {
        "$ref": "#/components/schemas/ValidationProblemDetails"}
    assert "HTTPValidationError" not in document["components"]["schemas"]
    name = document["components"]["schemas"]["Item"]["properties"]["name"]
    assert name["pattern"] == "^[^\\x00]*$"


# --- in the reader's language (issue 23) -------------------------------------------------

JAPANESE = {"Accept-Language": "ja"}


async def test_a_missing_field_is_explained_in_japanese_with_the_same_fields() -> None:
    async with client() as http:
        japanese = await http.post("/items", json={"name": "scope"}, headers=JAPANESE)
        english = await http.post("/items", json={"name": "scope"})
    assert japanese.status_code == english.status_code == 422
    assert japanese.json()["detail"] == "正しくない項目があります: quantity。"
    assert english.json()["detail"] == "Some fields are not valid: quantity."
    # What a program reads is the same in both; only the sentences are translated.
    for key in ("type", "title", "status"):
        assert japanese.json()[key] == english.json()[key]
    assert [(e["field"], e["location"]) for e in japanese.json()["errors"]] == \
        [(e["field"], e["location"]) for e in english.json()["errors"]] == [("quantity", "body")]
    assert japanese.json()["errors"][0]["message"] == "必須の項目です。"
    assert english.json()["errors"][0]["message"] == "Field required", "pydantic's own words"


@pytest.mark.parametrize(("item", "japanese", "english"), [
    ({"name": "a", "quantity": True}, "true や false ではなく整数を指定してください。",
     "Value error, give a whole number, not true or false"),
    ({"name": "a", "quantity": 2**31}, "2147483647 以下の値にしてください。",
     "Input should be less than or equal to 2147483647"),
    ({"name": "", "quantity": 1}, "1 文字以上で入力してください。",
     "String should have at least 1 character"),
], ids=["our-validator", "a-range", "too-short"])
async def test_each_kind_of_field_error_is_worded_in_the_readers_language(
        item: dict[str, object], japanese: str, english: str) -> None:
    async with client() as http:
        in_japanese = await http.post("/items", json=item, headers=JAPANESE)
        in_english = await http.post("/items", json=item)
    assert in_japanese.json()["errors"][0]["message"] == japanese
    assert in_english.json()["errors"][0]["message"] == english


def test_an_error_kind_not_worded_here_keeps_pydantics_message() -> None:
    assert field_message({"type": "url_parsing", "msg": "Input should be a valid URL",
                          "ctx": {"error": "relative URL without a base"}}) == \
        "Input should be a valid URL"
    # A context unlike pydantic's (a placeholder missing) falls back the same way.
    assert field_message({"type": "greater_than", "msg": "too small", "ctx": {}}) == \
        "too small"


async def test_the_kits_own_problems_speak_japanese() -> None:
    async with client() as http:
        missing = await http.get("/nowhere", headers=JAPANESE)
        wrong_method = await http.delete("/items", headers=JAPANESE)
        broken = await http.post("/items", content=b'{"name": "x",, "quantity": 1}',
                                 headers={"Content-Type": "application/json", **JAPANESE})
    assert missing.json()["detail"] == "/nowhere には何もありません。"
    assert missing.json()["title"] == "Not Found", "a title is the status's name, as it was"
    assert wrong_method.json()["detail"] == \
        "/items では DELETE は使えません。使えるのは GET, POST です。"
    assert "正しい JSON ではありません" in broken.json()["detail"]
    assert "13 文字目" in broken.json()["detail"]
    assert broken.json()["type"].endswith("/invalid-json") and broken.json()["position"] == 13


async def test_a_5xx_problem_is_logged_in_english_whatever_the_reader_reads(
        caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="kansoku.kit.errors"):
        async with client() as http:
            answer = await http.get("/away", headers=JAPANESE)
    assert answer.status_code == 503
    assert answer.json()["detail"].startswith("warehouse サービスは現在利用できません")
    logged = [record.getMessage() for record in caplog.records
              if record.name == "kansoku.kit.errors"]
    assert logged == ["answered 503 dependency-unavailable (warehouse: no answer in time)"]
