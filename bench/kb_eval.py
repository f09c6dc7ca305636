"""Answer quality on the labelled sets, per band, for both engines: `make bench-kb`.

    .venv/bin/python bench/kb_eval.py

Uses the shipped calibration (webapp/kb/calibration.py) and the default thresholds:
the training domains, the held-out domain and all of tests/data/answers_eval, before and
after the learning loop, for the hybrid and the lexical engine side by side, and what
other thresholds would give. `bench/fit_answers.py` refits the calibration; the tables'
columns are explained in `bench/answers_eval.py`. No database is needed.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.answers_eval import LEGEND, Vectors, load_domains  # noqa: E402
from bench.fit_answers import Model, report, threshold_table  # noqa: E402
from webapp.bots.models import DEFAULT_ANSWER_THRESHOLD, DEFAULT_SUGGEST_THRESHOLD  # noqa: E402
from webapp.kb import calibration  # noqa: E402


def main() -> int:
    from webapp import create_app

    with create_app("development", SQLALCHEMY_DATABASE_URI="sqlite://", REDIS_URL="").app_context():
        domains = load_domains()
        vectors = Vectors()
        vectors.add_domains(domains.values())
        model = Model(
            calibration.LEXICAL,
            calibration.HYBRID_INTERCEPT,
            calibration.HYBRID_WEIGHTS,
            DEFAULT_ANSWER_THRESHOLD,
            DEFAULT_SUGGEST_THRESHOLD,
        )
        print(LEGEND)
        print(report(model, domains, vectors))
        print("\n" + threshold_table(model, domains, vectors))
    return 0


if __name__ == "__main__":
    sys.exit(main())
