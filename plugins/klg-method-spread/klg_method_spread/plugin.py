"""The keras-learngene plugin: registers the `spread` method.

Loaded through the entry point `method_spread` of the group `keras_learngene` (see
`pyproject.toml`); `KLG_LOAD_PLUGINS` decides whether it loads (unset: yes).
"""

import keras_learngene
from klg_method_spread.method import Spread


@keras_learngene.hookimpl
def register_methods(register):
    register("spread", Spread)
