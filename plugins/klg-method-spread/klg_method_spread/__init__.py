"""klg-method-spread: the `spread` condensing method for keras-learngene."""

__all__ = ["Spread"]


def __getattr__(name):
    # `Spread` imports keras_learngene.methods (and so Keras): imported when asked for, so
    # that loading the plugin, as `klg --help` does for the plugins' commands, stays instant
    if name == "Spread":
        from klg_method_spread.method import Spread

        return Spread
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
