"""Why an order was cancelled, in words: the `CancelReason` orders records (and payments'
`DeclineReason` for a declined charge) as a person reads it, in their language.

Orders keeps the codes on the order and sends them on its `order.cancelled` event;
whoever shows the order words them here — the worker's e-mails in the customer's
language, the storefront's order page and the admin dashboard in their reader's. One
vocabulary: a new code is worded once, here. Orders and events from before the codes
were kept carry only the English `reason`, which is shown as it is.
"""

from __future__ import annotations

from kansoku.contracts.schemas import CancelReason, DeclineReason
from kansoku.kit.i18n import N_, _

#: Why an order was cancelled, by its `reason_code`.
CANCEL_REASONS: dict[str, str] = {
    CancelReason.PAYMENT_DECLINED: N_("the payment was declined"),
    CancelReason.PAYMENTS_UNAVAILABLE: N_("payments were unavailable just then"),
    CancelReason.PAYMENTS_TIMED_OUT: N_("the payment did not go through in time; any "
                                        "amount taken is refunded"),
    CancelReason.RESERVATION_EXPIRED: N_("the items were no longer reserved for it; the "
                                         "payment is refunded"),
}
#: A declined payment, by payments' `decline_reason`. A stolen card is not named to the
#: person holding it: the issuer declined, as a real shop would say.
DECLINE_REASONS: dict[str, str] = {
    DeclineReason.INSUFFICIENT_FUNDS: N_("the payment was declined: insufficient funds"),
    DeclineReason.STOLEN_CARD: N_("the payment was declined by the card issuer"),
    DeclineReason.PROCESSING_ERROR: N_("the payment was declined: the card network could "
                                       "not process it"),
}


def cancellation_words(code: str | None, decline: str | None, english: str | None
                       ) -> str | None:
    """Why an order was cancelled, in the current language: from its codes; its English
    `english` reason for an order from before the codes (or a code not known here);
    None when nothing says why."""
    if code == CancelReason.PAYMENT_DECLINED and decline in DECLINE_REASONS:
        return _(DECLINE_REASONS[decline])
    if code in CANCEL_REASONS:
        return _(CANCEL_REASONS[code])
    return english or None
