"""klg-similarities-extra: SVCCA, PWCCA and orthogonal Procrustes similarity metrics for
keras-learngene, registered as `svcca`, `pwcca` and `procrustes` through its plugin hooks.
"""

from klg_similarities_extra.metrics import (
    PWCCA,
    SVCCA,
    OrthogonalProcrustes,
    canonical_correlations,
)

__version__ = "0.1.0"

__all__ = ["PWCCA", "SVCCA", "OrthogonalProcrustes", "__version__", "canonical_correlations"]
