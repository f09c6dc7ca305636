"""Answer latency of the hybrid and the lexical engine over 1,000 and 10,000 FAQ entries.

    .venv/bin/python bench/answer_latency.py        # or: make bench-answer (~10 minutes)
    .venv/bin/python bench/answer_latency.py --sizes 1000

The entries are synthetic but shaped like a real shop's FAQ: 500 products (brand x
item, over several categories) x 20 topics (shipping, returns, warranty, invoices, ...),
each topic with several wordings of its question, two similar phrasings and an answer
with the product's own figures; a fixed seed makes every run the same. The questions
are 80% paraphrases worded unlike any stored phrasing (with the customer's own
context) and 20% questions the shop cannot answer.

For each size, on a throwaway SQLite database, as in `make run` without Redis:
1. Import: the entries are saved, then `webapp.kb.tasks.embed_bot` (the job an import
   queues for the worker) embeds their texts (question, 2 similar questions, answer).
2. Engine, in-process: the first question builds the bot's index from the stored
   vectors (never embedding a stored text), the index's memory; the rebuild after one
   similar question was added (one new vector read); then every question through
   `HybridEngine.answer` and `LexicalEngine.answer` with the index cached (the
   question's embedding, both retrievals, the calibrated confidence, `decide`).
3. HTTP: `POST /api/v1/conversations/{id}/messages` with an API key through Flask's
   test client (enterprise plan): authentication, the conversation, the answer,
   metering and storage, i.e. a customer's whole message.

Targets (issue 11): the hybrid engine's p95 < 20 ms at 10,000 entries; embedding
10,000 entries < 2 minutes.
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from flask import Flask  # noqa: E402

from webapp.kb.engines import IndexedEntry  # noqa: E402

SEED = 20261201
SIZES = (1_000, 10_000)
QUESTIONS = 1_000
TARGET_P95_MS = 20.0
TARGET_EMBED_S = 120.0


def _words(text: str) -> list[str]:
    return text.split()


BRANDS = _words(
    "茗山 云溪 青禾 松风 禾木 北辰 南屿 星野 朗月 初雪 白鹭 远山 知味 "
    "素然 暖阳 清泉 叶语 墨竹 月见 晴川 拾光 小满 山海 若水 乐途"
)
CATEGORIES = {
    "茶叶": _words("西湖龙井 碧螺春 铁观音 大红袍 普洱熟茶 白毫银针 正山小种 茉莉花茶"),
    "茶具": _words("紫砂壶 玻璃公道杯 青瓷盖碗 旅行茶具套装"),
    "家电": _words("空气炸锅 破壁机 电热水壶 扫地机器人"),
    "数码": _words("蓝牙耳机 智能手表 充电宝 机械键盘"),
}
ITEMS = [(category, item) for category, items in CATEGORIES.items() for item in items]


@dataclass(frozen=True)
class Topic:
    questions: tuple[str, ...]  # one is the entry's question, two more its similar phrasings
    paraphrases: tuple[str, ...]  # how customers ask, worded unlike the stored phrasings
    answer: str


TOPICS = (
    Topic(
        ("{p}下单后多久发货？", "{p}什么时候能发出", "{p}拍下后几天发货", "{p}付款后多久出库"),
        ("我刚买了{p}，大概哪天寄出来", "{p}今天付款明天能发走吗", "买的{p}怎么还没发"),
        "{p}现货付款后{n}小时内发货，预售款以商品页标注的日期为准。",
    ),
    Topic(
        ("{p}支持七天无理由退货吗？", "{p}不喜欢能退吗", "{p}可以无理由退吗"),
        ("收到{p}不太满意，还能退回去吗", "{p}拆封了还可以退不", "{p}买错了想退掉"),
        "{p}签收{n}天内未使用、不影响二次销售可无理由退货，退货运费由买家承担。",
    ),
    Topic(
        ("{p}的保修期是多久？", "{p}保修几年", "{p}坏了保修吗", "{p}质保多长时间"),
        ("{p}用了半年出毛病了还在保修范围吗", "{p}过了一年坏了免费修吗", "{p}售后保多久"),
        "{p}自签收之日起整机保修{n}个月，人为损坏不在保修范围内。",
    ),
    Topic(
        ("{p}可以开发票吗？", "{p}能开票吗", "买{p}怎么开发票"),
        ("公司买{p}需要报销，能给张发票吗", "{p}的电子发票在哪里下载", "{p}开专票要什么资料"),
        "购买{p}可开具电子普通发票，企业客户可申请增值税专用发票，确认收货后{n}天内开出。",
    ),
    Topic(
        ("{p}怎么使用？", "{p}的使用方法", "{p}第一次用要注意什么"),
        ("新买的{p}不会用，有说明书吗", "{p}到手以后第一步做什么", "{p}有没有使用教程视频"),
        "{p}的使用说明见包装内的说明书，也可在商品详情页观看{n}分钟的使用视频。",
    ),
    Topic(
        ("{p}有哪些规格？", "{p}有几种规格", "{p}有大包装吗", "{p}有没有小份的"),
        ("{p}想买大一点的有吗", "{p}有没有适合送人的款式", "{p}可以选颜色或者容量吗"),
        "{p}目前有{n}种规格可选，具体以商品页的规格选项为准。",
    ),
    Topic(
        ("{p}是正品吗？", "{p}是不是正品", "{p}有防伪吗"),
        ("你们卖的{p}会不会是假货", "{p}怎么辨别真假", "{p}有没有官方授权"),
        "本店{p}均为品牌官方授权正品，包装内附防伪码，可扫码验证，假一赔{n}。",
    ),
    Topic(
        ("{p}的价格会降吗？", "{p}什么时候打折", "{p}有优惠活动吗"),
        ("{p}双十一会便宜吗", "{p}现在买划算还是等活动", "{p}过几天会降价吗"),
        "{p}的活动价以当期页面为准，购买后{n}天内降价可申请价保退差价。",
    ),
    Topic(
        ("{p}缺货了什么时候补货？", "{p}卖完了还会有吗", "{p}什么时候到货"),
        ("{p}一直显示无货，啥时候能买", "{p}断货了能预订吗", "{p}下次上架是哪天"),
        "{p}预计{n}天内补货，可在商品页点击到货提醒，补货后会短信通知您。",
    ),
    Topic(
        ("{p}怎么保存？", "{p}怎么存放", "{p}需要放冰箱吗"),
        ("{p}买多了放哪里比较好", "{p}夏天会不会坏掉", "{p}开封以后怎么放"),
        "{p}请放在阴凉干燥处保存，避免阳光直射，开封后建议{n}个月内用完。",
    ),
    Topic(
        ("{p}收到有破损怎么办？", "{p}坏了怎么处理", "{p}收到是碎的"),
        ("快递送来的{p}外壳裂了", "{p}打开发现磕坏了一个角", "{p}送到时包装被压扁了"),
        "{p}签收后{n}小时内拍照联系客服，核实后免费补发或退款。",
    ),
    Topic(
        ("{p}可以寄到国外吗？", "{p}支持海外直邮吗", "{p}能发国际快递吗"),
        ("我在新加坡能买{p}吗", "{p}寄到美国要多少运费", "{p}海外地址可以下单吗"),
        "{p}支持寄往{n}个国家和地区，国际运费按重量计算，关税由收件人承担。",
    ),
    Topic(
        ("{p}可以货到付款吗？", "{p}能货到付款吗", "{p}支持到付吗"),
        ("买{p}能不能先收货再给钱", "{p}送到了再付钱行吗", "{p}可以签收时付款吗"),
        "{p}暂不支持货到付款，可使用微信、支付宝或银行卡付款，单笔满{n}元可分期。",
    ),
    Topic(
        ("{p}可以定制吗？", "{p}能刻字吗", "{p}可以印公司标志吗"),
        ("公司想批量订{p}印上logo", "{p}能不能做成专属礼盒", "{p}刻名字要加钱吗"),
        "{p}支持企业定制，{n}件起订，请联系客服提供需求和设计稿。",
    ),
    Topic(
        ("{p}批发价是多少？", "{p}批量买有优惠吗", "{p}多买能便宜吗"),
        ("我开店想长期进{p}", "{p}一次买五十个什么价", "{p}团购有折扣吗"),
        "{p}单次采购满{n}件享批发价，具体价格请联系客服按数量报价。",
    ),
    Topic(
        ("{p}有赠品吗？", "{p}送什么东西", "{p}有没有礼品"),
        ("买{p}会附送什么小礼物", "{p}现在下单有没有额外赠送", "{p}送的东西是什么"),
        "活动期间购买{p}赠送{n}元无门槛券一张，赠品数量有限送完即止。",
    ),
    Topic(
        ("{p}包邮吗？", "{p}运费多少", "{p}要不要运费"),
        ("就买一个{p}要付邮费吗", "{p}寄到新疆加运费吗", "{p}满多少免邮"),
        "{p}单笔满{n}元包邮，新疆、西藏等偏远地区需另付运费。",
    ),
    Topic(
        ("{p}能换货吗？", "{p}可以换别的款式吗", "{p}换货流程是什么"),
        ("{p}颜色不喜欢想换一个", "{p}尺寸选错了能调换吗", "{p}收到后能换成别的规格吗"),
        "{p}签收{n}天内未使用可申请换货，在订单页选择换货并寄回即可。",
    ),
    Topic(
        ("{p}的产地在哪里？", "{p}是哪里生产的", "{p}是国产的吗"),
        ("{p}是在哪个工厂做的", "{p}原产地是哪", "{p}是进口的还是国内的"),
        "{p}由品牌自有工厂生产，产地信息见包装标签，生产批次可追溯{n}年。",
    ),
    Topic(
        ("{p}的安全认证有哪些？", "{p}有没有质检报告", "{p}安全吗"),
        ("{p}给小孩用安不安全", "{p}有没有国家检测报告", "{p}材质有没有毒"),
        "{p}已通过国家质检，检测报告编号见商品页，第{n}批次报告可下载查看。",
    ),
)

UNANSWERABLE = (
    "{city}明天天气怎么样",
    "推荐一部好看的{genre}电影",
    "{a}加{b}等于几",
    "怎么学{lang}编程",
    "{city}有什么好玩的景点",
    "帮我写一首关于{season}的诗",
    "你们老板叫什么名字",
    "今天股市行情如何",
    "附近有没有好吃的{food}",
    "怎么办理{city}的居住证",
)
FILLERS = {
    "city": _words("北京 上海 广州 深圳 成都 西安 南京 武汉 重庆 厦门"),
    "genre": _words("科幻 喜剧 悬疑 动画 纪录"),
    "lang": _words("Python Java Go Rust"),
    "season": _words("春天 夏天 秋天 冬天"),
    "food": _words("火锅 烧烤 面馆 川菜"),
}


def synthetic_faq(size: int, rng: random.Random) -> list[tuple[IndexedEntry, str, Topic]]:
    """`size` entries: (entry, product, topic), products x topics in a shuffled order."""
    products = [f"{brand}{item}" for brand in BRANDS for _category, item in ITEMS]
    pairs = [(product, topic) for product in products for topic in TOPICS]
    rng.shuffle(pairs)
    faq = []
    for number, (product, topic) in enumerate(pairs[:size], start=1):
        wordings = rng.sample(topic.questions, 3)
        entry = IndexedEntry(
            number,
            wordings[0].format(p=product),
            topic.answer.format(p=product, n=rng.randint(2, 48)),
            tuple(w.format(p=product) for w in wordings[1:]),
        )
        faq.append((entry, product, topic))
    return faq


def synthetic_questions(
    faq: list[tuple[IndexedEntry, str, Topic]], rng: random.Random
) -> list[tuple[str, int | None]]:
    questions: list[tuple[str, int | None]] = []
    for _ in range(QUESTIONS):
        if rng.random() < 0.8:
            entry, product, topic = rng.choice(faq)
            questions.append((rng.choice(topic.paraphrases).format(p=product), entry.id))
        else:
            template = rng.choice(UNANSWERABLE)
            values = {name: rng.choice(words) for name, words in FILLERS.items()}
            questions.append(
                (template.format(a=rng.randint(1, 99), b=rng.randint(1, 99), **values), None)
            )
    return questions


def rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def percentiles(samples: list[float]) -> tuple[float, float, float, float]:
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return cuts[49], cuts[94], cuts[98], max(samples)


def timed(questions: list[tuple[str, int | None]], ask: Callable[[str], object]) -> list[float]:
    for question, _expected in questions[:50]:  # warm-up
        ask(question)
    gc.collect()
    samples = []
    for question, _expected in questions:
        started = time.perf_counter()
        ask(question)
        samples.append((time.perf_counter() - started) * 1000)
    return samples


@dataclass
class EngineResult:
    build_s: float  # the first question's index build (reading every stored vector)
    rebuild_s: float  # after one similar question was added
    memory_mb: float
    ms: tuple[float, float, float, float]
    top1: float
    answered: float


@dataclass
class Result:
    size: int
    texts: int
    embed_s: float
    engines: dict[str, EngineResult] = field(default_factory=dict)
    http_ms: tuple[float, float, float, float] | None = None


def bench_size(app: Flask, size: int, http: bool) -> Result:
    from webapp.billing.services import grant_plan
    from webapp.bots.models import Bot
    from webapp.bots.services import create_api_key, create_bot
    from webapp.extensions import db
    from webapp.kb import embedding
    from webapp.kb.engines import LexicalEngine
    from webapp.kb.hybrid import HybridEngine
    from webapp.kb.services import entry_saved, knowledge_changed, new_entry
    from webapp.kb.tasks import embed_bot
    from webapp.orgs.services import create_organization, membership_for

    rng = random.Random(SEED + size)
    faq = synthetic_faq(size, rng)
    questions = synthetic_questions(faq, rng)
    with app.app_context():
        user = register_bench_user(size)
        organization = create_organization(user, f"bench {size}")
        grant_plan(organization.id, "enterprise", 12)
        membership = membership_for(user, organization.id)
        bot = create_bot(membership, f"bot {size}")
        key = create_api_key(membership, f"key {size}", bot.id).secret
        ids = {}
        for entry, _product, _topic in faq:
            ids[entry.id] = new_entry(bot, entry.question, entry.answer, entry.similar_questions)
        db.session.flush()
        knowledge_changed(bot.id)
        db.session.commit()
        bot_id = bot.id
        embedding.preload()
        started = time.perf_counter()
        texts = embed_bot(bot_id)
        embed_s = time.perf_counter() - started
        print(f"{size:,} entries: {texts:,} texts embedded in {embed_s:.0f} s", file=sys.stderr)
        result = Result(size, texts, embed_s)
        labelled = {stored.id: entry_id for entry_id, stored in ids.items()}
        for name, engine in (("hybrid", HybridEngine()), ("lexical", LexicalEngine())):
            bot = db.session.get(Bot, bot_id)
            assert bot is not None
            gc.collect()
            before = rss_mb()
            started = time.perf_counter()
            engine.answer(bot, "预热")  # the first question builds the index
            build_s = time.perf_counter() - started
            gc.collect()
            memory = rss_mb() - before
            first = ids[faq[0][0].id]
            added = "这个多久能寄出来" + ("" if name == "hybrid" else "呀")
            first.similar_questions = [*first.similar_questions, added]
            entry_saved(first)
            knowledge_changed(bot_id)
            db.session.commit()
            bot = db.session.get(Bot, bot_id)
            assert bot is not None
            started = time.perf_counter()
            engine.answer(bot, "预热")
            rebuild_s = time.perf_counter() - started
            answers: dict[str, Any] = {}

            def ask(
                question: str, engine: Any = engine, bot: Bot = bot, answers: Any = answers
            ) -> None:
                answers[question] = engine.answer(bot, question)

            samples = timed(questions, ask)
            answerable = [(q, e) for q, e in questions if e is not None]
            top1 = sum(
                bool(answers[q].matches) and labelled[answers[q].matches[0].entry_id] == e
                for q, e in answerable
            )
            answered = sum(answers[q].entry_id is not None for q, _e in questions)
            result.engines[name] = EngineResult(
                build_s,
                rebuild_s,
                memory,
                percentiles(samples),
                top1 / len(answerable),
                answered / len(questions),
            )
            print(f"{size:,} entries: {name} engine done", file=sys.stderr)
    if http:
        result.http_ms = bench_messages(app, key, questions)
    return result


def register_bench_user(size: int) -> Any:
    from webapp.auth.services import register_user

    return register_user(f"bench-{size}@example.com", "bench-password-0123", "bench")


def bench_messages(app: Flask, key: str, questions: list[tuple[str, int | None]]) -> Any:
    """A customer's message: `POST /api/v1/conversations/{id}/messages` with an API key."""
    client = app.test_client()
    headers = {"X-API-Key": key}
    started = client.post("/api/v1/conversations", json={}, headers=headers)
    assert started.status_code == 201, started.get_json()
    path = f"/api/v1/conversations/{started.get_json()['id']}/messages"

    def ask(question: str) -> None:
        response = client.post(path, json={"text": question}, headers=headers)
        assert response.status_code == 201, response.get_json()

    return percentiles(timed(questions, ask))


def report(results: list[Result]) -> str:
    lines = [
        f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average "
        f"{os.getloadavg()[0]:.1f}; {QUESTIONS:,} questions (80% paraphrases, 20% "
        f"unanswerable), seed {SEED}.",
        "",
        "| entries | texts embedded (job) | engine | first build | rebuild after +1 phrasing "
        "| index memory | p50 | p95 | p99 | max | top-1 | answered |",
        "|--:|--:|:--|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for result in results:
        for name, engine in result.engines.items():
            p50, p95, p99, worst = engine.ms
            lines.append(
                f"| {result.size:,} | {result.texts:,} in {result.embed_s:.0f} s | {name} "
                f"| {engine.build_s:.2f} s | {engine.rebuild_s:.2f} s | {engine.memory_mb:.0f} MB "
                f"| {p50:.2f} ms | {p95:.2f} ms | {p99:.2f} ms | {worst:.1f} ms "
                f"| {engine.top1:.1%} | {engine.answered:.1%} |"
            )
    lines += [
        "",
        "| entries | message request p50 | p95 | p99 | max |",
        "|--:|--:|--:|--:|--:|",
    ]
    for result in results:
        if result.http_ms:
            lines.append(
                "| {:,} | {:.2f} ms | {:.2f} ms | {:.2f} ms | {:.1f} ms |".format(
                    result.size, *result.http_ms
                )
            )
    large = results[-1]
    p95 = large.engines["hybrid"].ms[1]
    lines += [
        "",
        f"Hybrid engine p95 at {large.size:,} entries: {p95:.2f} ms (target < "
        f"{TARGET_P95_MS:.0f} ms: {'met' if p95 < TARGET_P95_MS else 'missed'}); "
        f"embedding its {large.size:,} entries: {large.embed_s:.0f} s (target < "
        f"{TARGET_EMBED_S:.0f} s: {'met' if large.embed_s < TARGET_EMBED_S else 'missed'}).",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--no-http", action="store_true", help="only the in-process engines")
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    args = parser.parse_args()
    from flask_migrate import upgrade

    from webapp import create_app

    results = []
    with tempfile.TemporaryDirectory() as directory:
        app = create_app(
            "development",
            SQLALCHEMY_DATABASE_URI=f"sqlite:///{directory}/bench.db",
            RATELIMIT_ENABLED=False,
            REDIS_URL="",
            LLM_BASE_URL="",
            ANSWER_ENGINE="hybrid",
        )
        with app.app_context():
            upgrade()
        for size in args.sizes:
            results.append(bench_size(app, size, not args.no_http))
    print(report(results))
    large = results[-1]
    met = large.engines["hybrid"].ms[1] < TARGET_P95_MS and large.embed_s < TARGET_EMBED_S
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
