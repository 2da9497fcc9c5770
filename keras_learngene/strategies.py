"""Inheritance strategies: where the learngene's units and the fresh units go
in a descendant.

A strategy is a plan function `plan(num_learngene_units, n_layers)` returning
the descendant's units in order as `(source, index)` pairs (a `Strategy`
subclass may instead override `build` to make the units itself, e.g. from
parameters a method stored):

- `("learngene", i)`: learngene unit `i` with its inherited weights;
- `("copy", i)`: another unit initialised with a copy of unit `i`'s weights;
- `("fresh", i)`: a randomly initialised unit of the same kind as unit `i`.

Every learngene unit appears exactly once as `("learngene", i)`, in order.

One definition of the descendant's size holds for every strategy: `n_layers`
is the number of *new* units, the slots that are not a learngene unit taken
as it is (`"copy"` and `"fresh"`); the *depth* is the number of all slots.
Bridges a learngene carries between CNN stages and the stem and head are
counted by neither. A strategy says which `n_layers` gives a depth
(`Strategy.new_units`), so a descendant can be sized either way.
"""

import dataclasses
import inspect

from keras_learngene import _names as names

SOURCES = ("learngene", "copy", "fresh")
# how fresh units start: the paper's random initialisation, or the identity
FRESH_INITS = ("random", "identity")


@dataclasses.dataclass(frozen=True)
class Strategy:
    """A named inheritance strategy.

    Attributes:
        name: registry name.
        plan: `plan(num_learngene_units, n_layers) -> [(source, index), ...]`.
        description: one line for the docs and `klg plugins`.
        generic: `True` for a strategy that lays out the units of any
            learngene; `False` for one dedicated to the learngenes of one
            method (TLEG's `linear_expansion`, SWS's `stage_sharing`), which
            inherits them by default and refuses other learngenes.
    """

    name: str
    plan: object
    description: str = ""
    generic: bool = True

    def layout(self, num_units, n_layers):
        """The validated plan for a learngene of `num_units` units."""
        slots = [tuple(slot) for slot in self.plan(num_units, n_layers)]
        bad = [s for s in slots if len(s) != 2 or s[0] not in SOURCES
               or not isinstance(s[1], int) or not 0 <= s[1] < num_units]
        inherited = [i for source, i in slots if source == "learngene"]
        if bad or inherited != list(range(num_units)):
            raise ValueError(
                f"Strategy {self.name!r} returned an invalid plan {slots!r}: every slot must "
                f"be (source, index) with source in {SOURCES} and 0 <= index < {num_units}, "
                "and each learngene unit must appear once, in order, as ('learngene', i)."
            )
        fresh = sum(source != "learngene" for source, _ in slots)
        if fresh != n_layers:
            raise ValueError(
                f"Strategy {self.name!r} planned {fresh} new units for n_layers={n_layers}."
            )
        return slots

    def new_units(self, num_units, depth):
        """The `n_layers` at which this strategy builds a descendant of
        `depth` units from a learngene of `num_units` units. Every learngene
        unit is taken once as it is, so `depth - num_units`; a strategy whose
        plan is otherwise (e.g. one that builds every unit anew) overrides
        this. Raises `ValueError` for a depth it cannot build."""
        if depth < num_units:
            raise ValueError(
                f"Strategy {self.name!r} keeps each of the learngene's {num_units} units and "
                f"adds new ones, so depth={depth} (all units) must be at least {num_units}."
            )
        return depth - num_units

    def layout_at_depth(self, num_units, depth):
        """The validated plan of the descendant of `depth` units: what this
        strategy builds at that depth (`layout` at `new_units`)."""
        slots = self.layout(num_units, self.new_units(num_units, depth))
        if len(slots) != depth:
            raise ValueError(
                f"Strategy {self.name!r} planned {len(slots)} units for depth={depth}: its "
                "new_units() and its plan disagree."
            )
        return slots

    def build(self, form, learngene, n_layers, shape, fresh_init="random"):
        """The descendant's units, in order, for inputs of `shape` (the
        stem's output): the plan's learngene units (copies), copies and fresh
        units, named by the layer-name protocol (`keras_learngene._names`),
        with a fresh bridge wherever the learngene has one.

        `fresh_init="identity"` makes each fresh unit start as the identity
        (`Form.identity_unit`); bridges change the shape, so they stay random.
        A subclass that overrides `build` without a `fresh_init` argument
        builds no fresh units, and `inherit` refuses `"identity"` for it."""
        sources = learngene.learngene_units
        units, copies, fresh, bridges = [], 0, 0, 0
        for position, (source, i) in enumerate(self.layout(len(sources), n_layers)):
            like = sources[i]
            bridge = learngene.bridge_before(like.name) if source == "learngene" else None
            if bridge is not None:  # a new bridge where the learngene has one
                units.append(form.fresh_unit(bridge, shape, names.bridge(bridges),
                                             preserve_shape=False))
                bridges += 1
                shape = tuple(units[-1].compute_output_shape((None,) + shape)[1:])
            if source == "fresh":
                unit = _fresh_unit(form, sources, i, shape, names.fresh(fresh), fresh_init)
                fresh += 1
            else:
                expected = tuple(like.input.shape[1:])
                # Units take any spatial size or token count; rank and width must match.
                if len(expected) != len(shape) or expected[-1] != shape[-1]:
                    raise ValueError(
                        f"Strategy {self.name!r} puts learngene unit {like.name!r} (input "
                        f"shape {expected}) at position {position}, where the input has shape "
                        f"{shape}; pick another strategy or input_shape."
                    )
                unit_name = names.inherited(like.name) if source == "learngene" else \
                    names.copy(copies, like.name)
                copies += source == "copy"
                unit = form.copy_unit(like, shape, unit_name)
            units.append(unit)
            shape = tuple(unit.compute_output_shape((None,) + shape)[1:])
        return units


def takes_fresh_init(strategy):
    """Whether `strategy` builds fresh units whose start `fresh_init` chooses
    (its `build` takes the argument); strategies that build their own units
    (TLEG's, SWS's) do not."""
    return "fresh_init" in inspect.signature(strategy.build).parameters


def _fresh_unit(form, sources, i, shape, name, fresh_init="random"):
    """A fresh unit like learngene unit `i` that keeps `shape` (random, or the
    identity); when a unit changes the shape (it downsamples), the nearest
    learngene unit that keeps it serves as the model instead."""
    error = None
    for j in sorted(range(len(sources)), key=lambda j: (abs(j - i), -j)):
        try:
            if fresh_init == "identity":
                return form.identity_unit(sources[j], shape, name)
            return form.fresh_unit(sources[j], shape, name, preserve_shape=True)
        except ValueError as exc:
            error = error or exc
    raise error


def stack(num_units, n_layers):
    """Fresh units after the learngene, before the head (Auto Learngene)."""
    return [("learngene", i) for i in range(num_units)] + [("fresh", num_units - 1)] * n_layers


def prepend(num_units, n_layers):
    """Fresh units before the learngene (Heur Learngene's descendants, whose
    inherited high-level layers sit on top of new low-level ones)."""
    return [("fresh", 0)] * n_layers + [("learngene", i) for i in range(num_units)]


def interleave(num_units, n_layers):
    """Fresh units spread evenly between the learngene units (after each
    learngene unit in turn, round robin)."""
    after = [n_layers // num_units + (i < n_layers % num_units) for i in range(num_units)]
    slots = []
    for i, count in enumerate(after):
        slots += [("learngene", i)] + [("fresh", i)] * count
    return slots


def expand(num_units, n_layers):
    """Stage-wise sharing (SWS, Xia et al., IJCAI 2024): each learngene unit
    also initialises the next consecutive units, as copies of its weights,
    so a small learngene grows into a deep descendant with no random unit."""
    after = [n_layers // num_units + (i < n_layers % num_units) for i in range(num_units)]
    slots = []
    for i, count in enumerate(after):
        slots += [("learngene", i)] + [("copy", i)] * count
    return slots


BUILTIN_STRATEGIES = {
    "stack": Strategy("stack", stack, "fresh units after the learngene (Auto Learngene)"),
    "prepend": Strategy("prepend", prepend, "fresh units before the learngene (Heur Learngene)"),
    "interleave": Strategy("interleave", interleave, "fresh units between learngene units"),
    "expand": Strategy("expand", expand, "copies of each learngene unit after it (SWS-style)"),
}


def as_strategy(obj, name=None):
    """Normalises what a plugin registers: a `Strategy` instance or subclass
    (instantiated with no arguments), or a plan function."""
    if isinstance(obj, type) and issubclass(obj, Strategy):
        obj = obj()
    if isinstance(obj, Strategy):
        return obj
    if callable(obj):
        return Strategy(name or obj.__name__, obj, (obj.__doc__ or "").strip().split("\n")[0])
    raise TypeError(f"A strategy must be a Strategy or a plan function, got {obj!r}.")
