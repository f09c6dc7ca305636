"""Every relative link and `#anchor` in the README and docs/ leads somewhere.

Anchors are GitHub's heading slugs: lower-cased, punctuation dropped (letters, digits, `_`,
spaces and `-` stay), spaces turned into `-`, a repeated slug suffixed `-1`, `-2`, ...
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = [ROOT / "README.md", ROOT / "bench" / "README.md", *sorted(ROOT.glob("docs/*.md"))]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.S | re.M)


def slug(heading: str) -> str:
    kept = (
        c
        for c in heading.strip().lower()
        if c in " -" or unicodedata.category(c)[0] in "LMN" or unicodedata.category(c) == "Pc"
    )
    return "".join(kept).replace(" ", "-")


def anchors(document: Path) -> set[str]:
    seen: dict[str, int] = {}
    found = set()
    for line in FENCE.sub("", document.read_text()).splitlines():
        if match := re.match(r"#{1,6} (.+)", line):
            base = slug(match.group(1))
            count = seen.get(base, 0)
            seen[base] = count + 1
            found.add(base if count == 0 else f"{base}-{count}")
    return found


def links(document: Path) -> list[str]:
    return LINK.findall(FENCE.sub("", document.read_text()))


def broken_links(document: Path) -> list[str]:
    broken = []
    for target in links(document):
        if re.match(r"[a-z]+:", target):  # http:, https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        resolved = (document.parent / path).resolve() if path else document
        if not resolved.exists():
            broken.append(f"{target}: no such file")
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
            broken.append(f"{target}: no such heading in {resolved.name}")
    return broken


def test_slugs_follow_github() -> None:
    assert slug("Widget API (`/api/v1/widget`)") == "widget-api-apiv1widget"
    assert slug("What `make bench` does") == "what-make-bench-does"
    assert slug("Plans, subscriptions and orders") == "plans-subscriptions-and-orders"


def test_a_missing_anchor_is_found(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("# Title\n\n## Part\n\n[ok](#part) [bad](#nowhere) [gone](other.md)\n")
    assert broken_links(page) == ["#nowhere: no such heading in page.md", "other.md: no such file"]


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_links_resolve(document: Path) -> None:
    assert links(document), "a page of the documentation links nowhere"
    assert broken_links(document) == []
