"""`spread`: k units spread evenly over the ancestry's depth."""

import numpy as np

from keras_learngene.methods import Condensed, Method


def spread_indices(k, total, first=0):
    """`k` increasing unit indices spread evenly over units `first` to
    `total - 1` (both included when `k > 1`)."""
    indices = np.round(np.linspace(first, total - 1, k)).astype(int).tolist()
    for n in range(1, k):  # distinct and increasing even where rounding collides
        indices[n] = max(indices[n], indices[n - 1] + 1)
    return indices


class Spread(Method):
    """The `k` ancestry units spread evenly over its depth (a baseline).

    Options:
        first: the shallowest unit the spread may start at.
    """

    name = "spread"
    title = "spread-k"
    description = "k units spread evenly over the ancestry's depth (example plugin)"
    options = {"first": 0}

    def check(self, job):
        first, most = job.options["first"], len(job.anatomy.units) - job.num_units
        if not isinstance(first, int) or isinstance(first, bool) or not 0 <= first <= most:
            raise ValueError(f"first={first!r} must be an int from 0 to {most} for "
                             f"{job.num_units} of {len(job.anatomy.units)} units.")

    def condense(self, job):
        indices = spread_indices(job.num_units, len(job.anatomy.units), job.options["first"])
        return Condensed(indices, {"selection": "spread", "scores": None})

    def describe(self, provenance):
        return [f"spread over the depth: units {provenance['source_units']} of "
                f"{provenance['ancestry']['units']}"]
