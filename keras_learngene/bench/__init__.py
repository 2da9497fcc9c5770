"""The benchmark of the four Learngene claims (`klg bench`).

Descendants built from a learngene should 1) converge faster, 2) be less
sensitive to hyperparameters, 3) perform better and 4) need fewer training
samples than the same architecture trained from scratch. `run_bench` trains
every method of a profile on N-way K-shot episodes of novel classes (glyphs,
Fashion-MNIST) and writes raw runs, a Markdown report with one table and
verdict per claim (from paired 95% intervals), and plots; see
`docs/benchmark.md` for the protocol (v2) and the committed results.
"""

from keras_learngene.bench._profiles import (
    METHODS,
    PROFILES,
    Data,
    Profile,
    get_profile,
    with_methods,
)
from keras_learngene.bench._report import TARGETS, load_records, summarize, write_report
from keras_learngene.bench._runner import plan_runs, run_bench

__all__ = [
    "METHODS", "PROFILES", "Data", "Profile", "TARGETS", "get_profile", "load_records", "plan_runs",
    "run_bench", "summarize", "with_methods", "write_report",
]
