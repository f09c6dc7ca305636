"""Answer confidence calibration: written by bench/fit_answers.py, do not edit.

A logistic model turns each candidate's signals (`webapp.kb.hybrid.FEATURES`) into the
probability that it is the right entry; `LEXICAL` does the same from the lexical
confidence alone (the lexical engine, and entries whose vectors are not stored yet).
The default thresholds are on that probability scale (`webapp.bots.models`).

Weights fitted on every labelled domain but `clinic` (tests/data/answers_eval: shop,
school, saas; tests/data/kb_eval: tea). Thresholds fitted on shop, school and saas, each
answered out of fold (by weights fitted without it): the answer threshold is the lowest
with false answers at most 3.0% of all questions, the suggest threshold the
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

hybrid engine, thresholds (0.83, 0.02) (held out: clinic):

| domains | n | right | wrong | offered | lost | found | u. answered | u. lost | false | top-1 |
|:--|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|
| training | 637 | 20.0% | 1.5% | 61.2% | 0.0% | 81.2% | 6.4% | 0.0% | 2.8% | 66.8% |
| held out | 209 | 17.8% | 0.7% | 70.4% | 0.0% | 88.2% | 5.3% | 0.0% | 1.9% | 67.8% |
| all four | 846 | 19.5% | 1.3% | 63.5% | 0.0% | 83.0% | 6.1% | 0.0% | 2.6% | 67.0% |
| tea (kb_eval) | 252 | 44.9% | 0.0% | 49.7% | 0.0% | 94.6% | 1.5% | 0.0% | 0.4% | 86.5% |

lexical engine, thresholds (0.83, 0.02) (held out: clinic):

| domains | n | right | wrong | offered | lost | found | u. answered | u. lost | false | top-1 |
|:--|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|
| training | 637 | 0.6% | 0.2% | 45.7% | 3.9% | 46.3% | 0.6% | 8.7% | 0.3% | 31.7% |
| held out | 209 | 0.7% | 0.0% | 53.3% | 5.3% | 53.9% | 1.8% | 15.8% | 0.5% | 41.4% |
| all four | 846 | 0.6% | 0.2% | 47.6% | 4.2% | 48.2% | 0.9% | 10.4% | 0.4% | 34.1% |
| tea (kb_eval) | 252 | 14.6% | 1.6% | 74.6% | 0.0% | 89.2% | 1.5% | 7.5% | 1.6% | 80.5% |

hybrid engine, learning loop (eval split; +N: learn-split questions the
bot did not answer right, added as similar questions of their entries):

| domains | n | right | wrong | offered | lost | found | u. answered | u. lost | false | top-1 |
|:--|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|
| training, before | 521 | 21.8% | 1.4% | 60.9% | 0.0% | 82.8% | 6.4% | 0.0% | 3.1% | 67.5% |
| training, after (+99) | 521 | 21.6% | 1.4% | 62.6% | 0.0% | 84.2% | 6.4% | 0.0% | 3.1% | 68.1% |
| held out, before | 171 | 18.4% | 0.0% | 73.7% | 0.0% | 92.1% | 5.3% | 0.0% | 1.8% | 72.8% |
| held out, after (+32) | 171 | 17.5% | 0.0% | 73.7% | 0.0% | 91.2% | 5.3% | 0.0% | 1.8% | 69.3% |
| all four, before | 692 | 21.0% | 1.1% | 64.1% | 0.0% | 85.1% | 6.1% | 0.0% | 2.7% | 68.8% |
| all four, after (+131) | 692 | 20.6% | 1.1% | 65.4% | 0.0% | 85.9% | 6.1% | 0.0% | 2.7% | 68.4% |

lexical engine, learning loop (eval split; +N: learn-split questions the
bot did not answer right, added as similar questions of their entries):

| domains | n | right | wrong | offered | lost | found | u. answered | u. lost | false | top-1 |
|:--|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|
| training, before | 521 | 0.6% | 0.3% | 46.3% | 4.9% | 46.8% | 0.6% | 8.7% | 0.4% | 33.0% |
| training, after (+115) | 521 | 1.1% | 0.3% | 57.8% | 1.7% | 58.9% | 0.6% | 4.6% | 0.4% | 37.6% |
| held out, before | 171 | 0.9% | 0.0% | 50.0% | 6.1% | 50.9% | 1.8% | 15.8% | 0.6% | 42.1% |
| held out, after (+38) | 171 | 0.9% | 0.0% | 63.2% | 1.8% | 64.0% | 3.5% | 7.0% | 1.2% | 48.2% |
| all four, before | 692 | 0.6% | 0.2% | 47.2% | 5.2% | 47.8% | 0.9% | 10.4% | 0.4% | 35.3% |
| all four, after (+153) | 692 | 1.1% | 0.2% | 59.1% | 1.7% | 60.2% | 1.3% | 5.2% | 0.6% | 40.3% |

hybrid engine, leave one domain out (weights and thresholds fitted
without the domain):

| held out | n | right | wrong | offered | lost | found | u. answered | u. lost | false | top-1 |
|:--|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|
| shop (0.85, 0.05) | 214 | 21.8% | 1.3% | 58.3% | 0.0% | 80.1% | 12.1% | 1.7% | 4.2% | 65.4% |
| school (0.84, 0.05) | 210 | 19.1% | 2.0% | 57.9% | 1.3% | 77.0% | 8.6% | 5.2% | 3.8% | 63.8% |
| clinic (0.83, 0.02) | 209 | 17.8% | 0.7% | 70.4% | 0.0% | 88.2% | 5.3% | 0.0% | 1.9% | 67.1% |
| saas (0.86, 0.05) | 213 | 19.9% | 1.3% | 59.0% | 0.0% | 78.8% | 7.0% | 10.5% | 2.8% | 67.3% |
| all four | 846 | 19.6% | 1.3% | 61.4% | 0.3% | 81.0% | 8.3% | 4.3% | 3.2% | 65.9% |
"""

LEXICAL = (-3.5910208498657585, 8.090656196715278)  # intercept, slope
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
    "cosine_z",
    "answer_z",
    "unknown",
    "length",
)
HYBRID_INTERCEPT = -5.010155588464153
HYBRID_WEIGHTS = (
    0.21364884805902035,
    -1.4905463434548567,
    1.8000667315585603,
    1.7588554970514834,
    5.2950063345011165,
    -2.8148684559371193,
    0.2522592707751998,
    2.200572627935443,
    4.485654985846321,
    1.4465911836217564,
    -0.0593111044977308,
    0.08183566180570968,
    -0.03626959871652108,
    0.4384719716666563,
    0.22694672373340996,
    -0.5296751892362034,
    0.7318525086275962,
)
ANSWER_THRESHOLD = 0.83
SUGGEST_THRESHOLD = 0.02
