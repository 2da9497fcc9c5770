"""Lets the tests run from a source checkout, installed or not.

The package directory goes on `sys.path` so the metric tests import this checkout; the
keras-learngene core is taken from the monorepo root when it is not installed. Tests of the
entry point itself skip unless the distribution is installed
(`pip install ./plugins/klg-method-spread`).
"""

import importlib.util
import sys
from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parents[1]
REPO_ROOT = PACKAGE_ROOT.parents[1]

if str(PACKAGE_ROOT) not in sys.path:
    sys.path.insert(0, str(PACKAGE_ROOT))
if importlib.util.find_spec("keras_learngene") is None and (REPO_ROOT / "keras_learngene").is_dir():
    sys.path.append(str(REPO_ROOT))
