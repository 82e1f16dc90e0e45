"""The lab's operations over HTTP, on real PostgreSQL: what each problem and its twin
answer, how many statements each really sent, and how the lab refuses what it cannot
run."""

from __future__ import annotations

import asyncio
import time
import uuid
from decimal import Decimal
from typing import Any

import httpx
import pytest

from tests.services.lab.conftest import PRODUCTS, TOKENS, Shop, lab_app


def as_user(user_id: str | None = None) -> dict[str, str]:
    return TOKENS.headers(user_id=user_id or str(uuid.uuid4()))


async def run(lab: httpx.AsyncClient, path: str, parameters: dict[str, Any] | None = None,
              *, user_id: str | None = None, **body: Any) -> httpx.Response:
    user_id = user_id or str(uuid.uuid4())
    return await lab.post(path, headers=as_user(user_id),
                          json={"user_id": user_id, "parameters": parameters or {}, **body})


def stripped(results: list[dict[str, Any]], *keys: str) -> list[tuple[Any, ...]]:
    return [tuple(row[key] for key in keys) for row in results]


# --- N+1 ------------------------------------------------------------------------------

async def test_n_plus_one_sends_a_query_per_product_and_its_twin_one(
        lab: httpx.AsyncClient, shop: Shop) -> None:
    parameters = {"limit": 20, "category": shop.category}
    user_id = str(uuid.uuid4())
    problem = await run(lab, "/scenarios/n-plus-one", parameters, user_id=user_id,
                        operation="n_plus_one")
    fixed = await run(lab, "/scenarios/n-plus-one/fixed", parameters, user_id=user_id)
    assert problem.status_code == 200, problem.text
    assert fixed.status_code == 200, fixed.text
    slow, fast = problem.json(), fixed.json()

    # One for the page, one per product: 21. The twin: one statement.
    assert slow["data"]["query_count"] == 21
    assert fast["data"]["query_count"] == 1
    assert slow["status"] == fast["status"] == "success"
    assert slow["operation"] == "n_plus_one" and fast["operation"] == "n_plus_one_fixed"
    assert (slow["fixed"], fast["fixed"]) == (False, True)
    assert slow["user_id"] == fast["user_id"] == user_id
    assert slow["data"]["execution_time"] > 0

    # The same answer, right: the first 20 products by id with their order counts.
    expected = [(product_id, str(shop.products[product_id][0]), shop.products[product_id][1])
                for product_id in sorted(shop.products)[:20]]
    keys = ("id", "price", "order_count")
    assert stripped(slow["data"]["results"], *keys) == expected
    assert stripped(fast["data"]["results"], *keys) == expected
    assert slow["data"]["results"] == fast["data"]["results"]
    assert any(count > 1 for _, _, count in expected), "some products are in several orders"


@pytest.mark.parametrize("limit", [1, 5])
async def test_the_n_in_n_plus_one_is_the_limit(lab: httpx.AsyncClient, shop: Shop,
                                                limit: int) -> None:
    answer = await run(lab, "/scenarios/n-plus-one",
                       {"limit": limit, "category": shop.category})
    assert answer.json()["data"]["query_count"] == limit + 1
    assert len(answer.json()["data"]["results"]) == limit


async def test_without_a_category_the_whole_catalog_is_listed(lab: httpx.AsyncClient) -> None:
    problem = (await run(lab, "/scenarios/n-plus-one", {"limit": 3})).json()
    fixed = (await run(lab, "/scenarios/n-plus-one/fixed", {"limit": 3})).json()
    assert len(problem["data"]["results"]) == 3
    assert problem["data"]["results"] == fixed["data"]["results"]


# --- slow query -----------------------------------------------------------------------

async def test_the_slow_query_takes_three_seconds_or_more_and_its_twin_does_not(
        shop: Shop) -> None:
    """The one test that waits for pg_sleep. Meanwhile a second slow query is refused
    (the lab allows one at a time here), and the fixed twin is not held up."""
    app = lab_app(shop, max_concurrent_slow_queries=1)
    parameters = {"limit": 5, "category": shop.category}
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://lab",
            timeout=30) as lab:
        started = time.monotonic()
        slow_call = asyncio.create_task(run(lab, "/scenarios/slow-query", parameters))
        await asyncio.sleep(0.5)
        refused = await run(lab, "/scenarios/slow-query", parameters)
        fixed_started = time.monotonic()
        fixed = await run(lab, "/scenarios/slow-query/fixed", parameters)
        fixed_took = time.monotonic() - fixed_started
        slow = await slow_call
        took = time.monotonic() - started

    assert slow.status_code == 200, slow.text
    answer = slow.json()
    assert answer["variant"] == "sleep"
    assert 3.0 <= answer["data"]["execution_time"] <= 5.5
    assert took >= 3.0
    assert answer["data"]["query_count"] == 1, "the pause is inside the one statement"

    assert refused.status_code == 429
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.headers["retry-after"] == "5"

    assert fixed.status_code == 200
    assert fixed.json()["data"]["execution_time"] < 1.0 and fixed_took < 2.0
    expected = sorted(shop.products.items(), key=lambda item: (item[1][0], item[0]))[:5]
    assert stripped(fixed.json()["data"]["results"], "id", "price") == [
        (product_id, str(price)) for product_id, (price, _) in expected]
    assert answer["data"]["results"] == fixed.json()["data"]["results"]


async def test_the_cartesian_product_gives_the_twins_answer_the_long_way(
        lab: httpx.AsyncClient, shop: Shop) -> None:
    parameters = {"limit": 7, "category": shop.category, "variant": "cartesian"}
    problem = await run(lab, "/scenarios/slow-query", parameters)
    fixed = await run(lab, "/scenarios/slow-query/fixed", {"limit": 7,
                                                           "category": shop.category})
    assert problem.status_code == 200, problem.text
    assert problem.json()["variant"] == "cartesian"
    assert problem.json()["data"]["query_count"] == 1
    assert problem.json()["data"]["results"] == fixed.json()["data"]["results"]
    assert len(fixed.json()["data"]["results"]) == 7


async def test_a_statement_past_the_timeout_is_cancelled_and_answered(shop: Shop) -> None:
    """PostgreSQL's statement_timeout ends a runaway query: an error answer, no hang."""
    app = lab_app(shop, slow_query_min_seconds=5, slow_query_max_seconds=5,
                  statement_timeout_seconds=0.3)
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://lab",
            timeout=30) as lab:
        started = time.monotonic()
        answer = await run(lab, "/scenarios/slow-query", {"limit": 1})
    assert time.monotonic() - started < 3
    assert answer.status_code == 500
    body = answer.json()
    assert body["status"] == "error"
    assert body["error"]["sqlstate"] == "57014"
    assert "statement timeout" in body["error"]["message"]


# --- database error -------------------------------------------------------------------

async def test_a_missing_table_is_an_error_answer_and_its_twin_the_summary(
        lab: httpx.AsyncClient, shop: Shop) -> None:
    problem = await run(lab, "/scenarios/database-error", user_id=shop.buyer)
    assert problem.status_code == 500
    assert problem.headers["content-type"] == "application/json"
    body = problem.json()
    assert body["status"] == "error"
    assert body["variant"] == "missing-table"
    assert body["user_id"] == shop.buyer
    assert body["error"]["sqlstate"] == "42P01"
    assert body["error"]["type"] == "UndefinedTableError"
    assert 'relation "order_summaries" does not exist' in body["error"]["message"]
    assert body["data"] == {"results": [], "execution_time": body["data"]["execution_time"],
                            "query_count": 1}

    fixed = await run(lab, "/scenarios/database-error/fixed", user_id=shop.buyer)
    assert fixed.status_code == 200
    assert fixed.json()["status"] == "success"
    summary = {row["currency"]: (row["order_count"], Decimal(row["total_spent"]))
               for row in fixed.json()["data"]["results"]}
    assert summary == shop.paid
    assert shop.paid, "the buyer has paid orders"


async def test_a_double_insert_breaks_the_key_and_its_twin_saves_once(
        lab: httpx.AsyncClient, shop: Shop) -> None:
    user_id = str(uuid.uuid4())
    product_id = sorted(shop.products)[3]
    parameters = {"variant": "constraint", "product_id": product_id}
    problem = await run(lab, "/scenarios/database-error", parameters, user_id=user_id)
    assert problem.status_code == 500
    body = problem.json()
    assert body["status"] == "error" and body["variant"] == "constraint"
    assert body["error"]["sqlstate"] == "23505"
    assert "favourites_pkey" in body["error"]["message"]
    assert body["data"]["query_count"] == 2, "the first INSERT worked, the second broke"

    for _ in range(2):  # the fix is idempotent: twice in one run, and run twice
        fixed = await run(lab, "/scenarios/database-error/fixed", parameters, user_id=user_id)
        assert fixed.status_code == 200, fixed.text
        (saved,) = fixed.json()["data"]["results"]
        assert saved["product_id"] == product_id
    # The broken run kept nothing, and once saved, even its first INSERT breaks.
    again = await run(lab, "/scenarios/database-error", parameters, user_id=user_id)
    assert again.json()["data"]["query_count"] == 1


async def test_without_a_product_the_first_of_the_category_is_saved(
        lab: httpx.AsyncClient, shop: Shop) -> None:
    fixed = await run(lab, "/scenarios/database-error/fixed",
                      {"variant": "constraint", "category": shop.category})
    assert fixed.json()["data"]["results"][0]["product_id"] == min(shop.products)
    assert fixed.json()["data"]["query_count"] == 4  # find it, save twice, read back


# --- refusals -------------------------------------------------------------------------

async def test_without_a_token_the_lab_answers_401(lab: httpx.AsyncClient) -> None:
    answer = await lab.post("/scenarios/n-plus-one", json={})
    assert answer.status_code == 401
    assert answer.headers["content-type"] == "application/problem+json"


async def test_the_body_may_be_left_out(lab: httpx.AsyncClient) -> None:
    user_id = str(uuid.uuid4())
    answer = await lab.post("/scenarios/n-plus-one/fixed", headers=as_user(user_id))
    assert answer.status_code == 200
    assert answer.json()["user_id"] == user_id
    assert len(answer.json()["data"]["results"]) == 10  # the default limit


async def test_nobody_runs_an_operation_as_someone_else(lab: httpx.AsyncClient) -> None:
    answer = await lab.post("/scenarios/n-plus-one", headers=as_user(),
                            json={"user_id": str(uuid.uuid4())})
    assert answer.status_code == 403
    assert answer.json()["type"].endswith("/not-your-user-id")


async def test_service_tokens_are_refused(lab: httpx.AsyncClient) -> None:
    answer = await lab.post("/scenarios/n-plus-one",
                            headers=TOKENS.headers("service", "service:worker"), json={})
    assert answer.status_code == 403
    assert answer.json()["type"].endswith("/users-only")


@pytest.mark.parametrize(("path", "body", "problem"), [
    # Each route takes its own operation's name and its own scenario's variants only.
    ("/scenarios/n-plus-one", {"operation": "slow_query"}, "validation-error"),
    ("/scenarios/n-plus-one", {"parameters": {"variant": "sleep"}}, "validation-error"),
    ("/scenarios/slow-query", {"parameters": {"variant": "constraint"}}, "validation-error"),
    ("/scenarios/n-plus-one", {"parameters": {"product_id": 2**31}}, "validation-error"),
    ("/scenarios/n-plus-one", {"parameters": {"limit": 0}}, "validation-error"),
    ("/scenarios/n-plus-one", {"parameters": {"limit": 101}}, "validation-error"),
    ("/scenarios/n-plus-one", {"parameters": {"category": "'; DROP TABLE x"}},
     "validation-error"),
    ("/scenarios/n-plus-one", {"parameters": {"limt": 5}}, "validation-error"),
    ("/scenarios/database-error", {"parameters": {"variant": "nonsense"}},
     "validation-error"),
])
async def test_bad_requests_are_problems_naming_what_is_wrong(
        lab: httpx.AsyncClient, path: str, body: dict[str, Any], problem: str) -> None:
    answer = await lab.post(path, headers=as_user(), json=body)
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["type"].endswith(f"/{problem}")


async def test_an_unknown_category_lists_nothing(lab: httpx.AsyncClient) -> None:
    answer = await run(lab, "/scenarios/n-plus-one", {"category": "no-such-category"})
    assert answer.status_code == 200
    assert answer.json()["data"] == {"results": [], "query_count": 1,
                                     "execution_time": answer.json()["data"]["execution_time"]}


async def test_every_operation_has_its_own_route_in_the_openapi_document(
        lab: httpx.AsyncClient) -> None:
    paths = (await lab.get("/openapi.json")).json()["paths"]
    for scenario in ("n-plus-one", "slow-query", "database-error"):
        assert "post" in paths[f"/scenarios/{scenario}"]
        assert "post" in paths[f"/scenarios/{scenario}/fixed"]
    assert PRODUCTS > 20
