"""Reconciliation: the channels' trade bills for a day against our payments and refunds.

WeChat Pay's bill (`tradebill`, bill_type ALL) is CSV whose fields start with a
backtick, payments (交易状态 SUCCESS) and refunds (REFUND) in one list, then a
summary. Alipay's (`alipay.data.dataservice.bill.downloadurl.query`, bill_type
trade) is a zip of GBK CSV files; its 业务明细 lists payments (业务类型 交易) and
refunds (退款, with the out_request_no). Both are read by column name.

A day is a calendar day in Asia/Shanghai, as the bills are. Our side of the day is
the payments the providers report paid that day and the refunds they report
refunded that day (`paid_at`, `succeeded_at` hold the providers' own times).
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta

import sqlalchemy as sa

from webapp.billing.models import Order
from webapp.billing.periods import SHANGHAI, day_bounds
from webapp.db import utcnow
from webapp.extensions import db
from webapp.payments import alipay, wechat
from webapp.payments.audit import record_event
from webapp.payments.models import Channel, Payment, Refund, RefundStatus
from webapp.payments.wechat import ProviderError

# Bills for a day are ready the next morning (WeChat Pay from about 10:00 Beijing time).
BILLS_READY_HOUR = 10


class BillError(Exception):
    """A bill that cannot be read as the provider's format."""


@dataclass(frozen=True)
class BillLine:
    """One payment or refund in a channel's bill."""

    channel: str
    kind: str  # payment or refund
    out_trade_no: str
    out_refund_no: str | None
    amount_fen: int


@dataclass(frozen=True)
class Difference:
    channel: str
    kind: str  # see DIFFERENCE_KINDS
    out_trade_no: str | None
    out_refund_no: str | None
    ours_fen: int | None
    theirs_fen: int | None

    def describe(self) -> str:
        number = self.out_trade_no or "-"
        if self.out_refund_no:
            number += f" refund {self.out_refund_no}"
        amounts = []
        if self.ours_fen is not None:
            amounts.append(f"ours {self.ours_fen} fen")
        if self.theirs_fen is not None:
            amounts.append(f"theirs {self.theirs_fen} fen")
        text = DIFFERENCE_KINDS[self.kind]
        return f"{self.channel}\t{self.kind}\t{number}\t{', '.join(amounts)}\t{text}"


DIFFERENCE_KINDS = {
    "paid_there_not_here": "paid at the channel, no payment recorded here",
    "paid_here_not_there": "a payment recorded here is not in the channel's bill",
    "payment_amount_differs": "the amounts differ",
    "refund_there_not_here": "refunded at the channel, not a succeeded refund here",
    "refund_here_not_there": "a succeeded refund here is not in the channel's bill",
    "refund_amount_differs": "the refunded amounts differ",
    "bill_unavailable": "the bill could not be downloaded or read",
}


def _money(text: str) -> int:
    """ "199.00" or "-199.00" (yuan) → fen, exactly."""
    text = text.strip()
    value = alipay.fen(text.removeprefix("-"))
    if value is None:
        raise BillError(f"not an amount: {text!r}")
    return -value if text.startswith("-") else value


def _rows(lines: Iterable[str]) -> list[dict[str, str]]:
    reader = csv.reader(lines)
    header = [name.strip().lstrip("`") for name in next(reader, [])]
    return [
        {name: value.strip().lstrip("`").strip() for name, value in zip(header, row, strict=False)}
        for row in reader
        if any(value.strip() for value in row)
    ]


def parse_wechat_bill(text: str) -> list[BillLine]:
    """WeChat Pay's ALL bill: the list up to the summary, whose row count is checked."""
    lines = text.splitlines()
    summary_at = next((i for i, line in enumerate(lines) if line.startswith("总交易单数")), None)
    if summary_at is None or summary_at + 1 >= len(lines):
        raise BillError("no summary section")
    rows = _rows(lines[:summary_at])
    summary = _rows(lines[summary_at : summary_at + 2])
    try:
        if int(summary[0]["总交易单数"]) != len(rows):
            raise BillError("the summary's count does not match the rows")
        result = []
        for row in rows:
            if row["交易状态"] == "SUCCESS":
                result.append(
                    BillLine(
                        Channel.WECHAT, "payment", row["商户订单号"], None, _money(row["订单金额"])
                    )
                )
            elif row["交易状态"] == "REFUND" and row["退款状态"] == "SUCCESS":
                result.append(
                    BillLine(
                        Channel.WECHAT,
                        "refund",
                        row["商户订单号"],
                        row["商户退款单号"],
                        _money(row["申请退款金额"]),
                    )
                )
    except (KeyError, IndexError, ValueError) as exc:
        raise BillError(f"unexpected WeChat Pay bill: {exc}") from None
    return result


def parse_alipay_bill(archive: bytes) -> list[BillLine]:
    """Alipay's trade bill: the 业务明细 file of the zip (not its 汇总), GBK."""
    try:
        with zipfile.ZipFile(io.BytesIO(archive)) as bundle:
            names = [n for n in bundle.namelist() if n.endswith("业务明细.csv")]
            if len(names) != 1:
                raise BillError("no 业务明细 file in the bill")
            text = bundle.read(names[0]).decode("gbk")
    except (zipfile.BadZipFile, UnicodeDecodeError) as exc:
        raise BillError(f"unexpected Alipay bill: {exc}") from None
    rows = _rows(line for line in text.splitlines() if not line.startswith("#"))
    result = []
    try:
        for row in rows:
            if row["业务类型"] == "交易":
                result.append(
                    BillLine(
                        Channel.ALIPAY,
                        "payment",
                        row["商户订单号"],
                        None,
                        _money(row["订单金额（元）"]),
                    )
                )
            elif row["业务类型"] == "退款":
                result.append(
                    BillLine(
                        Channel.ALIPAY,
                        "refund",
                        row["商户订单号"],
                        row["退款批次号/请求号"],
                        -_money(row["商家实收（元）"]),
                    )
                )
    except (KeyError, ValueError) as exc:
        raise BillError(f"unexpected Alipay bill: {exc}") from None
    return result


def download(channel: str, day: date) -> list[BillLine]:
    """The channel's bill for the day, recorded as a payment event (ProviderError, BillError)."""
    try:
        if channel == Channel.WECHAT:
            text = wechat.trade_bill(day)
            lines = [] if text is None else parse_wechat_bill(text)
        else:
            archive = alipay.trade_bill(day)
            lines = [] if archive is None else parse_alipay_bill(archive)
    except (ProviderError, BillError) as exc:
        record_event(channel, "bill", "error", reason=str(exc), details={"date": day.isoformat()})
        raise
    record_event(
        channel,
        "bill",
        "downloaded",
        verified=True,
        details={"date": day.isoformat(), "lines": len(lines)},
    )
    return lines


def _our_payments(channel: str, start: datetime, end: datetime) -> dict[str, int]:
    rows = db.session.execute(
        sa.select(Order.out_trade_no, Payment.amount_fen)
        .join(Order, Order.id == Payment.order_id)
        .where(Payment.channel == channel, Payment.paid_at >= start, Payment.paid_at < end)
    )
    return {number: amount for number, amount in rows}


def _our_refunds(channel: str, start: datetime, end: datetime) -> dict[str, tuple[str, int]]:
    rows = db.session.execute(
        sa.select(Refund.out_refund_no, Order.out_trade_no, Refund.amount_fen)
        .join(Order, Order.id == Refund.order_id)
        .where(
            Refund.channel == channel,
            Refund.status == RefundStatus.SUCCEEDED,
            Refund.succeeded_at >= start,
            Refund.succeeded_at < end,
        )
    )
    return {number: (trade, amount) for number, trade, amount in rows}


def compare(channel: str, day: date, lines: list[BillLine]) -> list[Difference]:
    """Every difference between the channel's bill for the day and our records."""
    start, end = day_bounds(day)
    differences: list[Difference] = []
    theirs_paid = {line.out_trade_no: line.amount_fen for line in lines if line.kind == "payment"}
    ours_paid = _our_payments(channel, start, end)
    # The bill's payments recorded here on another day (a clock at midnight), in one query.
    elsewhere = dict(
        db.session.execute(
            sa.select(Order.out_trade_no, Payment.amount_fen)
            .join(Order, Order.id == Payment.order_id)
            .where(
                Payment.channel == channel,
                Order.out_trade_no.in_(set(theirs_paid) - set(ours_paid)),
            )
        ).all()
    )
    for number, amount in sorted(theirs_paid.items()):
        ours = ours_paid.get(number, elsewhere.get(number))
        if ours is None:
            differences.append(
                Difference(channel, "paid_there_not_here", number, None, None, amount)
            )
        elif ours != amount:
            differences.append(
                Difference(channel, "payment_amount_differs", number, None, ours, amount)
            )
    for number, amount in sorted(ours_paid.items()):
        if number not in theirs_paid:
            differences.append(
                Difference(channel, "paid_here_not_there", number, None, amount, None)
            )
    # By number, summed: a number the bill lists twice is money sent back twice. A refund
    # without one (made in the channel's console) is none of ours.
    theirs_refunded: dict[str, BillLine] = {}
    for line in lines:
        if line.kind != "refund":
            continue
        if not line.out_refund_no:
            differences.append(
                Difference(
                    channel, "refund_there_not_here", line.out_trade_no, None, None, line.amount_fen
                )
            )
            continue
        number = line.out_refund_no
        seen = theirs_refunded.get(number)
        theirs_refunded[number] = (
            line if seen is None else replace(line, amount_fen=seen.amount_fen + line.amount_fen)
        )
    ours_refunded = _our_refunds(channel, start, end)
    known = {
        refund.out_refund_no: refund
        for refund in db.session.scalars(
            sa.select(Refund).where(
                Refund.channel == channel, Refund.out_refund_no.in_(set(theirs_refunded))
            )
        )
    }
    for number, line in sorted(theirs_refunded.items()):
        refund = known.get(number)
        if refund is None or refund.status != RefundStatus.SUCCEEDED:
            differences.append(
                Difference(
                    channel,
                    "refund_there_not_here",
                    line.out_trade_no,
                    number,
                    refund.amount_fen if refund is not None else None,
                    line.amount_fen,
                )
            )
        elif refund.amount_fen != line.amount_fen:
            differences.append(
                Difference(
                    channel,
                    "refund_amount_differs",
                    line.out_trade_no,
                    number,
                    refund.amount_fen,
                    line.amount_fen,
                )
            )
    for number, (trade, amount) in sorted(ours_refunded.items()):
        if number not in theirs_refunded:
            differences.append(
                Difference(channel, "refund_here_not_there", trade, number, amount, None)
            )
    return differences


def reconcile(day: date, channels: Iterable[str] = tuple(Channel)) -> list[Difference]:
    """Download each channel's bill for the day and list every difference."""
    differences: list[Difference] = []
    for channel in channels:
        try:
            lines = download(channel, day)
        except (ProviderError, BillError):
            differences.append(Difference(channel, "bill_unavailable", None, None, None, None))
            continue
        differences += compare(channel, day, lines)
    return differences


def latest_billed_day(now: datetime | None = None) -> date:
    """The most recent day whose bills the channels have ready."""
    local = (now or utcnow()).astimezone(SHANGHAI)
    back = 1 if local.hour >= BILLS_READY_HOUR else 2
    return local.date() - timedelta(days=back)
