"""The `Method` interface: how a learngene is condensed from an ancestry.

A method is registered through the `register_methods` hook like any plugin.
`keras_learngene.condense` cuts the ancestry with a form, checks the probe
data and the method's options before any work starts, then calls
`Method.condense(job)` and turns the `Condensed` it returns into a
`Learngene` with the provenance of the choice. Nothing outside a method's own
file knows its name: `klg condense`, `klg inspect`, the heatmap and the
benchmark read what a method declares here and what it recorded.
"""

import dataclasses

import numpy as np


@dataclasses.dataclass
class Job:
    """What a method condenses: the ancestry, cut by its form, and the probe data.

    Attributes:
        ancestry: the ancestry `keras.Model`.
        form: the `Form` that cut it.
        anatomy: the ancestry cut into `stem -> units -> head` (`Anatomy`).
        x: probe images (float32 numpy, shaped like the ancestry's input), or
            `None` when no data was given.
        y: their int labels, or `None`.
        num_units: how many units the learngene holds (k).
        options: the method's options, defaults filled in and checked.
        seed: the seed of every random choice.
        verbose: Keras verbosity of any training the method runs.
        chains: junction test `ok(prev, nxt)` of the ancestry's units (see
            `keras_learngene.methods.chain_test`).
    """

    ancestry: object
    form: object
    anatomy: object
    x: object
    y: object
    num_units: int
    options: dict
    seed: int = 0
    verbose: int = 0
    chains: object = None

    @property
    def num_classes(self):
        """Number of distinct probe labels (0 without labels)."""
        return 0 if self.y is None else len(np.unique(self.y))


@dataclasses.dataclass
class Condensed:
    """What a method returns.

    Attributes:
        indices: the ancestry units the learngene comes from, in order.
        record: the method's own provenance (JSON-serialisable): what it
            measured and why it chose. Keys the library reads when present:
            `matrix` (a score matrix), `heatmap` (how to draw it, see
            `Heatmap`), `scores` (one number per selected unit).
        units: optional learngene units the method built itself (e.g. TLEG's
            theta_A / theta_B units); default: copies of the ancestry units at
            `indices`, with fresh bridges where they do not chain.
        stem: optional stem layer the method built; default: a copy of the
            ancestry's stem.
    """

    indices: list
    record: dict = dataclasses.field(default_factory=dict)
    units: list = None
    stem: object = None


def heatmap(matrix, *, xlabel, ylabel, colorbar, boxes=(), columns=(), title=None):
    """How `klg inspect --png` draws a method's score matrix; a method puts
    the result under `record["heatmap"]`, so a learngene draws itself even
    where its method's plugin is not installed.

    Args:
        matrix: the matrix (a list of rows); rows and columns as labelled.
        xlabel: the columns' axis label.
        ylabel: the rows' axis label.
        colorbar: the colour bar's label (what a cell's value means).
        boxes: `(row, column)` cells to outline (e.g. the chosen matches).
        columns: columns to mark with a vertical line (e.g. chosen units).
        title: the plot's title (default: method and units).
    """
    return {"matrix": np.asarray(matrix, dtype="float64").round(6).tolist(),
            "xlabel": xlabel, "ylabel": ylabel, "colorbar": colorbar,
            "boxes": [[int(i), int(j)] for i, j in boxes],
            "columns": [int(c) for c in columns], "title": title}


class Method:
    """Base class of condensing methods.

    A subclass sets the class attributes and implements `condense`;
    `check` and `describe` have defaults.

    Attributes:
        name: the name it is registered under (`klg condense --method NAME`).
        title: its display name in reports (default: `name`).
        description: one line for `klg condense --help`, `klg plugins` and the docs.
        needs_data: `True` when it needs labelled probe data `(x, y)`.
        seeded: `True` when its choice depends on `seed` (the benchmark
            condenses it once per seed; otherwise once).
        strategy: the inheritance strategy `inherit` uses for its learngenes
            when none is given (`"stack"`: fresh units on top).
        options: `{option: default}`, the keyword arguments `condense` passes
            on to it; anything else is refused before work starts.
        quick_options: options that make it fast on tiny models, for smoke
            tests (the conformance suite condenses with them).
    """

    name = ""
    title = ""
    description = ""
    needs_data = False
    seeded = False
    strategy = "stack"
    options = {}
    quick_options = {}

    def supports(self, anatomy):
        """Why this method cannot condense an ancestry cut into `anatomy`
        (an `Anatomy`), or `None` when it can (the default). A method that
        refuses some families (e.g. TLEG: units of one shape only) says so
        here, and its `check` raises `ValueError` with this reason; the
        conformance suite skips the families a method does not support.
        """
        return None

    def check(self, job):
        """Validates `job.options` against the ancestry before any work
        (raise `ValueError` naming the option and the fix). Default: nothing."""

    def condense(self, job):
        """Condenses `job` (a `Job`) and returns a `Condensed`."""
        raise NotImplementedError

    def describe(self, provenance):
        """Lines of text that explain a learngene's choice, for `klg condense`
        and `klg inspect` (default: the units and their scores)."""
        return describe_units(provenance)

    def __repr__(self):
        return f"<method {self.name!r}>"


def describe_units(provenance):
    """The default explanation: which units were kept, with their scores."""
    units = provenance.get("source_units", [])
    scores = provenance.get("scores")
    line = f"selected by {provenance.get('method')}: units {units}"
    if scores:
        line += " (scores " + ", ".join(f"{s:.3f}" for s in scores) + ")"
    return [line]


def as_method(obj, name=None):
    """Normalises what a plugin registers: a `Method` instance or subclass."""
    if isinstance(obj, type) and issubclass(obj, Method):
        obj = obj()
    if not isinstance(obj, Method):
        raise TypeError(
            f"A method must be a keras_learngene.methods.Method instance or subclass, got "
            f"{obj!r}."
        )
    if name and not obj.name:
        obj.name = name
    if not isinstance(obj.options, dict):
        raise TypeError(f"Method {obj.name!r}: `options` must be a dict of defaults.")
    return obj
