"""klg-method-spread: the `spread` condensing method for keras-learngene."""

from klg_method_spread.method import Spread

__all__ = ["Spread"]
