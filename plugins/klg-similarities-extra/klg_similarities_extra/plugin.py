"""The keras-learngene plugin: registers the extra similarity metrics.

Loaded through the entry point `similarities_extra` of the group `keras_learngene` (see
`pyproject.toml`); `KLG_LOAD_PLUGINS` decides whether it loads (unset: yes).
"""

import keras_learngene
from klg_similarities_extra.metrics import PWCCA, SVCCA, OrthogonalProcrustes

SIMILARITIES = {metric.name: metric for metric in (SVCCA, PWCCA, OrthogonalProcrustes)}


@keras_learngene.hookimpl
def register_similarities(register):
    """Registers `svcca`, `pwcca` and `procrustes` with their default arguments."""
    for name, metric in SIMILARITIES.items():
        register(name, metric)
