"""The typed clients' answers when a call ends badly: what the caller is told depends on
whether the request got there."""

from __future__ import annotations

import httpx
import pytest

from kansoku.contracts.calls import Bearer
from kansoku.contracts.clients import OrdersClient, PaymentOutcomeUnknown
from kansoku.kit.errors import DependencyUnavailable
from kansoku.kit.http import BreakerPolicy, CircuitBreakers, ServiceClient

ORDER = "8f0c2b5e-4a59-4d59-9d53-7c1bd4f0a001"


def orders_answering(error: Exception) -> OrdersClient:
    def fail(request: httpx.Request) -> httpx.Response:
        raise error
    return OrdersClient(ServiceClient("orders", "http://orders.test",
                                      CircuitBreakers(BreakerPolicy()),
                                      transport=httpx.MockTransport(fail)))


async def test_a_payment_whose_answer_was_lost_may_have_gone_through() -> None:
    """Orders stopped (or was killed) after it got the payment: the connection breaks
    after the request went out. Not "cannot connect": the charge may have gone through,
    and paying again is safe."""
    orders = orders_answering(httpx.RemoteProtocolError("Server disconnected"))
    with pytest.raises(PaymentOutcomeUnknown) as raised:
        await orders.pay(Bearer("Bearer t"), ORDER, {"payment_method": "wallet"})
    problem = raised.value
    assert (problem.status, problem.code) == (503, "payment-outcome-unknown")
    assert "may have gone through" in problem.detail and ORDER in problem.detail
    assert "cannot connect" not in problem.detail
    assert problem.extensions["order_id"] == ORDER


async def test_a_payment_that_never_left_is_orders_being_away() -> None:
    orders = orders_answering(httpx.ConnectError("Connection refused"))
    with pytest.raises(DependencyUnavailable) as raised:
        await orders.pay(Bearer("Bearer t"), ORDER, {"payment_method": "wallet"})
    assert not isinstance(raised.value, PaymentOutcomeUnknown)
    assert "cannot connect" in raised.value.detail
