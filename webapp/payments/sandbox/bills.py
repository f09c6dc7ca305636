"""The sandbox's trade bills, in each provider's file format.

WeChat Pay (`tradebill`, ALL): CSV, every field prefixed with a backtick, payments
(SUCCESS) and refunds (REFUND) of the day in one list, then a summary header and
line. Alipay (trade bill): a zip of two GBK CSV files, 业务明细 (each payment 交易 and
refund 退款 with its out_request_no, framed by `#` comment lines) and its 汇总.
Service fees are 0.6% (rounded to the fen), as a merchant's statement shows them.
"""

from __future__ import annotations

import csv
import io
import zipfile
from datetime import date, timedelta

from webapp.payments.alipay import parse_alipay_time, yuan
from webapp.payments.sandbox.common import (
    SHANGHAI,
    fen_of,
    now,
)
from webapp.payments.sandbox.store import AlipayTradeRecord, RefundRecord, WechatTradeRecord
from webapp.payments.wechat import parse_rfc3339

WECHAT_HEADER = [
    "交易时间",
    "公众账号ID",
    "商户号",
    "特约商户号",
    "设备号",
    "微信订单号",
    "商户订单号",
    "用户标识",
    "交易类型",
    "交易状态",
    "付款银行",
    "货币种类",
    "应结订单金额",
    "代金券金额",
    "微信退款单号",
    "商户退款单号",
    "退款金额",
    "充值券退款金额",
    "退款类型",
    "退款状态",
    "商品名称",
    "商户数据包",
    "手续费",
    "费率",
    "订单金额",
    "申请退款金额",
    "费率备注",
]
WECHAT_SUMMARY = [
    "总交易单数",
    "应结订单总金额",
    "退款总金额",
    "充值券退款总金额",
    "手续费总金额",
    "订单总金额",
    "申请退款总金额",
]
ALIPAY_HEADER = [
    "支付宝交易号",
    "商户订单号",
    "业务类型",
    "商品名称",
    "创建时间",
    "完成时间",
    "门店编号",
    "门店名称",
    "操作员",
    "终端号",
    "对方账户",
    "订单金额（元）",
    "商家实收（元）",
    "支付宝红包（元）",
    "集分宝（元）",
    "支付宝优惠（元）",
    "商家优惠（元）",
    "券核销金额（元）",
    "券名称",
    "商家红包消费金额（元）",
    "卡消费金额（元）",
    "退款批次号/请求号",
    "服务费（元）",
    "分润（元）",
    "备注",
]
RULE = "-" * 40
FEE_PER_MILLE = 6


def fee_fen(amount_fen: int) -> int:
    return (amount_fen * FEE_PER_MILLE + 500) // 1000


def _signed_yuan(fen: int) -> str:
    return ("-" if fen < 0 else "") + yuan(abs(fen))


def _local(text: str | None) -> str:
    """An RFC 3339 time as the bills write it: 2026-12-07 10:34:56 (Asia/Shanghai)."""
    moment = parse_rfc3339(text or "")
    return f"{moment.astimezone(SHANGHAI):%Y-%m-%d %H:%M:%S}" if moment else ""


def _csv(rows: list[list[str]]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(rows)
    return out.getvalue()


def wechat_bill(
    appid: str,
    mchid: str,
    trades: list[WechatTradeRecord],
    refunds: list[RefundRecord],
    by_trade: dict[str, WechatTradeRecord],
) -> str:
    """The day's ALL bill: payments, then refunds, then the summary; `by_trade` holds
    the trades of the refunds (paid on this day or earlier)."""
    rows: list[list[str]] = []
    for trade in trades:
        rows.append(
            [
                _local(trade.success_time),
                appid,
                mchid,
                "0",
                "",
                trade.transaction_id or "",
                trade.out_trade_no,
                trade.payer_openid or "",
                "NATIVE",
                "SUCCESS",
                "OTHERS",
                "CNY",
                yuan(trade.total),
                "0.00",
                "0",
                "0",
                "0.00",
                "0.00",
                "",
                "",
                trade.description,
                "",
                f"{yuan(fee_fen(trade.total))}000",
                "0.60%",
                yuan(trade.total),
                "0.00",
                "",
            ]
        )
    for refund in refunds:
        origin = by_trade.get(refund.out_trade_no)
        rows.append(
            [
                _local(refund.success_time),
                appid,
                mchid,
                "0",
                "",
                (origin.transaction_id or "") if origin else "",
                refund.out_trade_no,
                (origin.payer_openid or "") if origin else "",
                "NATIVE",
                "REFUND",
                "OTHERS",
                "CNY",
                yuan(refund.total),
                "0.00",
                refund.refund_id,
                refund.out_refund_no,
                yuan(refund.amount),
                "0.00",
                "ORIGINAL",
                "SUCCESS",
                origin.description if origin else "",
                "",
                f"-{yuan(fee_fen(refund.amount))}000",
                "0.60%",
                yuan(refund.total),
                yuan(refund.amount),
                "",
            ]
        )
    paid = sum(trade.total for trade in trades)
    refunded = sum(refund.amount for refund in refunds)
    fees = sum(fee_fen(trade.total) for trade in trades) - sum(fee_fen(r.amount) for r in refunds)
    summary = [
        str(len(rows)),
        yuan(paid),
        yuan(refunded),
        "0.00",
        f"{_signed_yuan(fees)}000",
        yuan(paid),
        yuan(refunded),
    ]
    backtick = [[f"`{value}" for value in row] for row in rows]
    return _csv([WECHAT_HEADER, *backtick]) + _csv(
        [WECHAT_SUMMARY, [f"`{value}" for value in summary]]
    )


def _alipay_local(text: str | None) -> str:
    moment = parse_alipay_time(text or "")
    return f"{moment:%Y-%m-%d %H:%M:%S}" if moment else ""


def alipay_bill(
    pid: str,
    day: date,
    trades: list[AlipayTradeRecord],
    refunds: list[RefundRecord],
    by_trade: dict[str, AlipayTradeRecord],
) -> bytes:
    """The day's trade bill: a zip of 业务明细 and 业务明细(汇总), GBK CSV; `by_trade`
    holds the trades of the refunds (paid on this day or earlier)."""
    rows: list[list[str]] = []
    for trade in trades:
        total = fen_of(trade.total_amount)
        rows.append(
            [
                f"{trade.trade_no}\t",
                f"{trade.out_trade_no}\t",
                "交易",
                trade.subject,
                trade.gmt_create,
                _alipay_local(trade.gmt_payment),
                "",
                "",
                "",
                "",
                trade.buyer_logon_id,
                yuan(total),
                yuan(total),
                *["0.00"] * 5,
                "",
                "0.00",
                "0.00",
                "",
                _signed_yuan(-fee_fen(total)),
                "0.00",
                "",
            ]
        )
    for refund in refunds:
        origin = by_trade.get(refund.out_trade_no)
        rows.append(
            [
                f"{origin.trade_no if origin else ''}\t",
                f"{refund.out_trade_no}\t",
                "退款",
                origin.subject if origin else "",
                origin.gmt_create if origin else "",
                _local(refund.success_time),
                "",
                "",
                "",
                "",
                origin.buyer_logon_id if origin else "",
                yuan(refund.total),
                _signed_yuan(-refund.amount),
                *["0.00"] * 5,
                "",
                "0.00",
                "0.00",
                f"{refund.out_refund_no}\t",
                yuan(fee_fen(refund.amount)),
                "0.00",
                "",
            ]
        )
    start = f"{day:%Y年%m月%d日} 00:00:00"
    end = f"{day + timedelta(days=1):%Y年%m月%d日} 00:00:00"
    exported = f"{now().astimezone(SHANGHAI):%Y年%m月%d日 %H:%M:%S}"
    paid = sum(fen_of(trade.total_amount) for trade in trades)
    refunded = sum(refund.amount for refund in refunds)
    detail = (
        "#支付宝业务明细查询\r\n"
        f"#账号：[{pid}]\r\n"
        f"#起始日期：[{start}]   终止日期：[{end}]\r\n"
        f"#{RULE}业务明细列表{RULE}\r\n"
        + _csv([ALIPAY_HEADER, *rows])
        + f"#{RULE}业务明细列表结束{RULE}\r\n"
        f"#交易合计：{len(trades)}笔，商家实收共{yuan(paid)}元，商家优惠共0.00元\r\n"
        f"#退款合计：{len(refunds)}笔，商家实收退款共{_signed_yuan(-refunded)}元，商家优惠退款共0.00元\r\n"
        f"#导出时间：[{exported}]\r\n"
    )
    summary = (
        "#支付宝业务汇总查询\r\n"
        f"#账号：[{pid}]\r\n"
        f"#起始日期：[{start}]   终止日期：[{end}]\r\n"
        + _csv(
            [
                [
                    "门店编号",
                    "门店名称",
                    "交易订单总笔数",
                    "退款订单总笔数",
                    "订单金额（元）",
                    "商家实收（元）",
                ],
                [
                    "合计",
                    "",
                    str(len(trades)),
                    str(len(refunds)),
                    yuan(paid),
                    _signed_yuan(paid - refunded),
                ],
            ]
        )
        + f"#导出时间：[{exported}]\r\n"
    )
    stem = f"{pid}_{day:%Y%m%d}"
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as bundle:
        bundle.writestr(f"{stem}_业务明细.csv", detail.encode("gbk", errors="replace"))
        bundle.writestr(f"{stem}_业务明细(汇总).csv", summary.encode("gbk", errors="replace"))
    return archive.getvalue()
