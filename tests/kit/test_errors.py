"""Errors reach callers as RFC 9457 problem+json with the request id, never a traceback."""

from __future__ import annotations

import logging

import httpx
import pytest

from tests.kit.apps import make_app


def client() -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=make_app(),
                                                           raise_app_exceptions=False),
                             base_url="http://test")


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
    assert response.json()["detail"] == "DELETE is not allowed on /items."
