"""Placeholder: bench/fit_answers.py writes this file."""

LEXICAL = (-3.0, 6.0)
HYBRID_FEATURES = (
    "cosine",
    "cosine_margin",
    "answer_cosine",
    "answer_cosine_margin",
    "semantic_margin",
    "lexical",
    "lexical_margin",
    "coverage",
    "coverage_margin",
    "answer_coverage",
    "cosine_first",
    "answer_first",
    "lexical_first",
)
HYBRID_INTERCEPT = -3.0
HYBRID_WEIGHTS = (1.0,) * 13
ANSWER_THRESHOLD = 0.6
SUGGEST_THRESHOLD = 0.2
