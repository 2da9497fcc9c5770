"""The keras-learngene plugin: registers the `spread` method.

Loaded through the entry point `method_spread` of the group `keras_learngene` (see
`pyproject.toml`); `KLG_LOAD_PLUGINS` decides whether it loads (unset: yes).

The method's module imports Keras, so it is registered by reference ("module:class"),
imported when the method is first used: `klg --help` and `klg plugins` load every plugin
and must not start a backend.
"""

import keras_learngene


@keras_learngene.hookimpl
def register_methods(register):
    register("spread", "klg_method_spread.method:Spread")
