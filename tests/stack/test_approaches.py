"""A whole shop on each vendor approach: `KANSOKU_INSTRUMENTATION=xray` (the AWS X-Ray SDK
and CloudWatch's embedded metric format) and `=newrelic` (the New Relic agent), each
sending to the explorer's own intakes (docs/approaches.md).

What issue 22 asks of each: a customer's checkout shows in the explorer as one trace,
made by that approach, with the user's id, the SQL the services ran and the calls from
the gateway through orders to inventory and payments; and the order points at the trace
that placed it, as under OpenTelemetry. The checkout is found as a learner
would find it: the orders service's traces carrying the customer's id.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from kansoku.kit import semconv
from tests.stack.test_up import RunningStack
from tests.support import eventually, new_customer, run_cli, stack_environment

pytestmark = pytest.mark.stack

ADDRESS = {"street": "1 Approach St", "city": "Tokyo", "state": "", "zip": "100-0001",
           "country": "JP"}
CARD = {"card_number": "4111111111111111", "expiry_month": 12, "expiry_year": 2099,
        "cvv": "123"}
#: Where each approach puts the user's id: X-Ray as the annotation `user_id`, New Relic
#: as the custom attribute `userId` (the explorer copies either to `enduser.id`).
USER_ID_ATTRIBUTE = {"xray": "user_id", "newrelic": "userId"}
#: The services a paid checkout's payment request passes through.
CALLED = {"gateway", "orders", "inventory", "payments"}


@pytest.fixture(scope="module", params=["xray", "newrelic"])
def vendor_stack(request: pytest.FixtureRequest,
                 tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, RunningStack]]:
    approach: str = request.param
    data_dir = tmp_path_factory.mktemp(f"approach-{approach}") / "data"
    env = stack_environment(data_dir)
    env["KANSOKU_INSTRUMENTATION"] = approach
    result = run_cli("up", "--detach", env=env)
    assert result.returncode == 0, f"kansoku up failed:\n{result.stdout}\n{result.stderr}"
    try:
        yield approach, RunningStack(env, data_dir)
    finally:
        run_cli("down", env=env)


async def checkout(gateway: str) -> tuple[str, dict[str, Any]]:
    """A new customer buys the first product and pays: (their user id, the order)."""
    email, password = await new_customer(gateway, "Vendor Buyer")
    async with httpx.AsyncClient(base_url=gateway, timeout=60) as client:
        login = await client.post("/api/v1/auth/login",
                                  json={"email": email, "password": password})
        headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
        user_id = (await client.get("/api/v1/users/me", headers=headers)).json()["id"]
        products = (await client.get("/api/v1/products")).json()
        product = (products.get("items") or products.get("data"))[0]["id"]
        order = await client.post("/api/v1/orders", headers=headers, json={
            "items": [{"product_id": product, "quantity": 1}], "shipping_address": ADDRESS})
        assert order.status_code == 201, order.text
        paid = await client.post("/api/v1/payments", headers=headers, json={
            "order_id": order.json()["id"], "payment_method": "credit_card",
            "payment_details": CARD})
        assert paid.status_code == 201, paid.text
    return str(user_id), order.json()


def tags_of(span: dict[str, Any]) -> dict[str, Any]:
    return {tag["key"]: tag["value"] for tag in span["tags"]}


async def test_a_checkout_is_one_trace_with_the_user_the_sql_and_the_calls(
        vendor_stack: tuple[str, RunningStack]) -> None:
    approach, stack = vendor_stack
    user_id, order = await checkout(stack.url("gateway"))
    order_id = order["id"]
    payment_route = f"POST /orders/{order_id}/payment"
    found: dict[str, Any] = {}

    async def payment_trace_arrived() -> bool:
        async with httpx.AsyncClient(base_url=stack.url("explorer"), timeout=30) as explorer:
            traces = (await explorer.get("/api/traces", params={
                "service": "orders", "tags": json.dumps({semconv.ENDUSER_ID: user_id}),
                "lookback": "15m", "limit": 20})).raise_for_status().json()["data"]
        for trace in traces:
            if any(span["operationName"] == payment_route for span in trace["spans"]):
                found.update(trace)
                services = {process["serviceName"] for process in trace["processes"].values()}
                # Each process sends its part when it harvests (New Relic every 5 s): the
                # trace is whole once every service's part has come.
                return services >= CALLED
        return False

    # The calls: the public API's payment went through orders to inventory and payments,
    # each service's part in the same trace.
    await eventually(payment_trace_arrived, 90,
                     f"the explorer showing {approach}'s trace of the payment of {order_id} "
                     f"with spans of each of {sorted(CALLED)}")
    spans = [(found["processes"][span["processID"]]["serviceName"], span)
             for span in found["spans"]]
    # The order keeps the trace that placed it (its pages link there): the approach's
    # own trace id, as the explorer names it.
    async with httpx.AsyncClient(base_url=stack.url("explorer"), timeout=30) as explorer:
        placed = await explorer.get(f"/api/spans/{order['trace_id']}")
    assert placed.status_code == 200, f"the order's trace {order['trace_id']}: {placed.text}"
    assert any(span["name"] == "POST /orders" and span["service"] == "orders"
               for span in placed.json()["data"]["spans"])
    # Made by the approach, every span of it.
    assert {tags_of(span).get(semconv.TELEMETRY_SOURCE) for _, span in spans} == {approach}
    # The user, as the approach records it.
    orders_tags = [tags_of(span) for service, span in spans if service == "orders"]
    assert any(tags.get(USER_ID_ATTRIBUTE[approach]) == user_id for tags in orders_tags), (
        f"no orders span carries {USER_ID_ATTRIBUTE[approach]}={user_id}")
    # The SQL: orders settled the order in its own tables.
    statements = [str(tags[semconv.DB_STATEMENT]) for tags in orders_tags
                  if semconv.DB_STATEMENT in tags]
    assert any("orders." in statement for statement in statements), statements
