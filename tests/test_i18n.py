"""The Chinese catalogue is complete: every UI string in the code has a translation."""

from __future__ import annotations

from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parent.parent
CATALOG = ROOT / "webapp" / "translations" / "zh" / "LC_MESSAGES" / "messages.po"
METHOD_MAP = [("**.py", "python"), ("**/templates/**.html", "jinja2")]
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "_l": None, "lazy_gettext": None}


def source_messages() -> set[str]:
    found = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
        str(ROOT / "webapp"), METHOD_MAP, keywords=KEYWORDS
    ):
        found.add(message if isinstance(message, str) else message[0])
    return found


def _translated(string: str | tuple[str, ...]) -> bool:
    """A plural entry (a tuple of forms) counts only when every form is filled in."""
    return all(string) if isinstance(string, tuple) else bool(string)


def test_every_ui_string_has_a_chinese_translation():
    with CATALOG.open("rb") as handle:
        catalog = read_po(handle)
    translated = {
        message.id if isinstance(message.id, str) else message.id[0]
        for message in catalog
        if message.id and _translated(message.string) and "fuzzy" not in message.flags
    }
    missing = sorted(source_messages() - translated)
    assert missing == [], "run `make extract-messages` and translate:\n" + "\n".join(missing)


def test_chinese_is_the_default_and_english_is_available(client):
    chinese = client.get("/login").get_data(as_text=True)
    assert '<html lang="zh-CN">' in chinese
    assert "登录" in chinese
    client.get("/lang/en")
    english = client.get("/login").get_data(as_text=True)
    assert '<html lang="en">' in english
    assert "Log in" in english
    assert "登录" not in english
