"""Live mode without a channel's keys: checkout says the method is unavailable (no 500)."""

from __future__ import annotations

import pytest

from tests.billing.conftest import new_member
from webapp.billing.services import create_order
from webapp.errors import AppError
from webapp.extensions import db
from webapp.payments import alipay, wechat
from webapp.payments.models import Channel, PaymentEvent
from webapp.payments.services import start_payment


@pytest.mark.parametrize("channel", list(Channel))
def test_an_unconfigured_channel_is_503_channel_unavailable(app, monkeypatch, channel):
    monkeypatch.setitem(app.config, "PAYMENTS_MODE", "live")
    with app.test_request_context():
        wechat.reset_client()
        alipay.reset_client()
        owner = new_member()
        order = create_order(owner, "pro", 1)
        try:
            with pytest.raises(AppError) as refused:
                start_payment(owner, order.id, channel)
        finally:
            wechat.reset_client()
            alipay.reset_client()
        assert (refused.value.status, refused.value.error) == (503, "channel_unavailable")
        events = db.select(db.func.count()).where(PaymentEvent.order_id == order.id)
        assert db.session.scalar(events) == 0
        assert order.status == "pending"
