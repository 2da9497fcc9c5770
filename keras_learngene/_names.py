"""The layer-name protocol: what a layer's name says about where it came from.

Names survive `.keras` save and load, so a descendant or learngene read from
disk still tells its inherited layers from its fresh ones:

- `stem`: an ancestry's stem; `head_*`: a classification head (never inherited);
- `inherited_stem`, `inherited_<ancestry unit>`: a descendant's inherited layers;
- `copy<n>_<ancestry unit>`: new units initialised with a unit's weights;
- `fresh_<n>`: randomly initialised units;
- `bridge_<n>`: fresh layers between units of different shapes (CNN stages).
"""

STEM = "stem"
HEAD = "head_"
INHERITED = "inherited_"
INHERITED_STEM = INHERITED + STEM
FRESH = "fresh_"
BRIDGE = "bridge_"
COPY = "copy"


def inherited(unit):
    """The name of a descendant's inherited copy of learngene unit `unit`."""
    return INHERITED + unit


def copy(n, unit):
    """The name of the `n`-th new unit initialised with `unit`'s weights."""
    return f"{COPY}{n}_{unit}"


def fresh(n):
    """The name of the `n`-th randomly initialised unit."""
    return f"{FRESH}{n}"


def bridge(n):
    """The name of the `n`-th bridge."""
    return f"{BRIDGE}{n}"


def is_head(name):
    return name.startswith(HEAD)


def is_bridge(name):
    return name.startswith(BRIDGE)


def source_of(name):
    """The ancestry unit a descendant layer's weights came from (`"stem"` for
    the inherited stem), or `None` for fresh layers, bridges and the head."""
    if name == INHERITED_STEM:
        return STEM
    if name.startswith(INHERITED):
        return name[len(INHERITED):]
    if name.startswith(COPY) and "_" in name and name[len(COPY):].split("_", 1)[0].isdigit():
        return name.split("_", 1)[1]
    return None
