"""What `preload` loads before gunicorn (`--preload`) or the worker forks: everything a
first question needs, so that no freshly forked process makes its first customer wait.
Measured on a live server: the first answer of each new worker took 1.5-2.2 s, loading
jieba's dictionary, although the encoder was preloaded."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROBE = """
import jieba
from webapp import create_app
from webapp.kb.answering import preload
preload(create_app())
print(jieba.dt.initialized)
"""


@pytest.mark.parametrize("engine", ["hybrid", "lexical"])
def test_preload_loads_the_word_dictionary(engine: str) -> None:
    env = {**os.environ, "APP_ENV": "testing", "ANSWER_ENGINE": engine, "PYTHONPATH": str(ROOT)}
    finished = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert finished.returncode == 0, finished.stderr
    assert finished.stdout.strip().splitlines()[-1] == "True"
