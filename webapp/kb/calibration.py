"""Answer confidence calibration: written by bench/fit_answers.py, do not edit.

A logistic model turns each candidate's signals (`webapp.kb.hybrid.FEATURES`) into the
probability that it is the right entry; `LEXICAL` does the same from the lexical
confidence alone (the lexical engine, and entries whose vectors are not stored yet).
The default thresholds are on that probability scale (`webapp.bots.models`).

Weights fitted on every labelled domain but `clinic` (tests/data/answers_eval: shop,
school, saas; tests/data/kb_eval: tea). Thresholds fitted on shop, school and saas, each
answered out of fold (by weights fitted without it): the answer threshold is the lowest
with false answers at most 2.5% of all questions, the suggest threshold the
highest that still finds the right entry (answered or offered) for 80% of the
answerable ones. `make bench-kb` prints these figures again; `bench/fit_answers.py` says
how they are made.

n: questions. right / wrong: answered directly (confident) with the right / a wrong entry;
offered: unsure, with the right entry among the suggestions; lost: fallback and handoff (these
four: shares of the answerable questions; the rest of them are unsure without the right
entry); found = right + offered. u. answered / u. lost: shares of the questions that no
entry answers that got a direct answer / the fallback and a handoff (the rest got
suggestions). false: wrong answers plus answers to unanswerable questions,
as a share of ALL questions. top-1: the best match is the right entry, whatever its band.

hybrid engine, thresholds (0.87, 0.02) (held out: clinic):

| domains | n | right | wrong | offered | lost | found | u. answered | u. lost | false | top-1 |
|:--|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|
| training | 637 | 16.4% | 0.9% | 64.4% | 0.0% | 80.8% | 5.2% | 0.0% | 2.0% | 66.4% |
| held out | 209 | 14.5% | 0.7% | 73.7% | 0.0% | 88.2% | 3.5% | 0.0% | 1.4% | 65.8% |
| all four | 846 | 15.9% | 0.8% | 66.7% | 0.0% | 82.6% | 4.8% | 0.0% | 1.9% | 66.2% |
| tea (kb_eval) | 252 | 40.0% | 0.0% | 54.6% | 0.0% | 94.6% | 1.5% | 0.0% | 0.4% | 85.9% |

lexical engine, thresholds (0.87, 0.02) (held out: clinic):

| domains | n | right | wrong | offered | lost | found | u. answered | u. lost | false | top-1 |
|:--|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|
| training | 637 | 0.6% | 0.0% | 45.9% | 3.9% | 46.6% | 0.6% | 8.7% | 0.2% | 31.7% |
| held out | 209 | 0.0% | 0.0% | 53.9% | 5.3% | 53.9% | 1.8% | 15.8% | 0.5% | 41.4% |
| all four | 846 | 0.5% | 0.0% | 47.9% | 4.2% | 48.4% | 0.9% | 10.4% | 0.2% | 34.1% |
| tea (kb_eval) | 252 | 10.8% | 1.1% | 78.9% | 0.0% | 89.7% | 1.5% | 7.5% | 1.2% | 80.5% |

hybrid engine, learning loop (eval split; +N: learn-split questions the
bot did not answer right, added as similar questions of their entries):

| domains | n | right | wrong | offered | lost | found | u. answered | u. lost | false | top-1 |
|:--|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|
| training, before | 521 | 17.5% | 0.6% | 64.9% | 0.0% | 82.5% | 5.2% | 0.0% | 2.1% | 67.5% |
| training, after (+101) | 521 | 17.5% | 0.3% | 67.0% | 0.0% | 84.5% | 5.2% | 0.0% | 1.9% | 68.4% |
| held out, before | 171 | 14.9% | 0.0% | 77.2% | 0.0% | 92.1% | 3.5% | 0.0% | 1.2% | 71.9% |
| held out, after (+33) | 171 | 13.2% | 0.0% | 78.9% | 0.0% | 92.1% | 3.5% | 0.0% | 1.2% | 70.2% |
| all four, before | 692 | 16.9% | 0.4% | 68.0% | 0.0% | 84.8% | 4.8% | 0.0% | 1.9% | 68.6% |
| all four, after (+134) | 692 | 16.5% | 0.2% | 69.9% | 0.0% | 86.4% | 4.8% | 0.0% | 1.7% | 68.8% |

lexical engine, learning loop (eval split; +N: learn-split questions the
bot did not answer right, added as similar questions of their entries):

| domains | n | right | wrong | offered | lost | found | u. answered | u. lost | false | top-1 |
|:--|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|
| training, before | 521 | 0.6% | 0.0% | 46.6% | 4.9% | 47.1% | 0.6% | 8.7% | 0.2% | 33.0% |
| training, after (+115) | 521 | 0.9% | 0.0% | 58.3% | 1.7% | 59.2% | 0.6% | 4.6% | 0.2% | 37.6% |
| held out, before | 171 | 0.0% | 0.0% | 50.9% | 6.1% | 50.9% | 1.8% | 15.8% | 0.6% | 42.1% |
| held out, after (+38) | 171 | 0.0% | 0.0% | 64.0% | 1.8% | 64.0% | 3.5% | 7.0% | 1.2% | 48.2% |
| all four, before | 692 | 0.4% | 0.0% | 47.6% | 5.2% | 48.1% | 0.9% | 10.4% | 0.3% | 35.3% |
| all four, after (+153) | 692 | 0.6% | 0.0% | 59.7% | 1.7% | 60.4% | 1.3% | 5.2% | 0.4% | 40.3% |

hybrid engine, leave one domain out (weights and thresholds fitted
without the domain):

| held out | n | right | wrong | offered | lost | found | u. answered | u. lost | false | top-1 |
|:--|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|
| shop (0.88, 0.04) | 214 | 20.5% | 0.6% | 60.9% | 0.0% | 81.4% | 8.6% | 0.0% | 2.8% | 63.5% |
| school (0.88, 0.05) | 210 | 13.8% | 2.0% | 63.2% | 0.0% | 77.0% | 6.9% | 0.0% | 3.3% | 64.5% |
| clinic (0.87, 0.02) | 209 | 15.1% | 1.3% | 73.0% | 0.0% | 88.2% | 3.5% | 0.0% | 1.9% | 67.8% |
| saas (0.89, 0.05) | 213 | 15.4% | 0.0% | 62.2% | 0.6% | 77.6% | 3.5% | 3.5% | 0.9% | 66.7% |
| all four | 846 | 16.2% | 1.0% | 64.8% | 0.2% | 81.0% | 5.7% | 0.9% | 2.2% | 65.6% |
"""

LEXICAL = (-3.591020849865759, 8.090656196715278)  # intercept, slope
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
HYBRID_INTERCEPT = -3.023976141570433
HYBRID_WEIGHTS = (
    0.8386579198479931,
    0.3605013171344328,
    2.8124588575809444,
    2.5658109888472933,
    5.798450060164012,
    -1.6110815986052986,
    -0.36991021182431716,
    2.0423416635423615,
    4.520358884317415,
    1.4555877944364022,
    0.08306988749481398,
    0.12222061635145635,
    -0.037016728965072576,
)
ANSWER_THRESHOLD = 0.87
SUGGEST_THRESHOLD = 0.02
