"""A generic form for any Keras Functional model (`form="functional"`).

The model's graph is cut at its *cut tensors*: the tensors that every path
from the input to the output passes through. Whatever lies between two
consecutive cuts (a residual block, a squeeze-and-excitation branch, or a
single layer of a chain) has one input and one output, so it can be lifted
out as one unit without changing what the model computes.

A plain chain of layers is cut after every layer, which is too fine: a
batch norm or a ReLU alone is no "integral layer". So the raw segments are
grouped (see `FunctionalForm` for the exact rules): segments without a
kernel of their own (normalisation, activation, padding, pooling, ...) join
a neighbour, and neighbours whose layer names say they belong to one block
(`block_1_expand`, `block_1_project`) are merged. This gives one unit per
block for `keras.applications` models, and one unit per block layer for the
library's own ancestries.

Units are built with the public Functional API (`keras.Model` over calls of
the original layers, so they share the layers and weights). Reading the
graph needs a few Keras internals, stable across Keras 3 releases and used
nowhere else: `Functional._nodes_by_depth` and its `Node`s (`operation`,
`arguments`, `input_tensors`, `outputs`, `is_input`) for the nodes in
topological order, `Sequential._functional` for the graph behind a built
Sequential model, and `Layer._call_has_training_arg` to pass a nested
model's `training` argument on to its layers.
"""

import dataclasses
import functools
import operator
import re
import weakref

import keras
from keras import layers

from keras_learngene.forms._base import Anatomy, Form

# Layers whose weights only rescale activations: alone they are no unit, but
# belong with the conv / dense layer they follow (or, pre-activation, precede).
_NORMALIZATIONS = tuple(
    getattr(layers, name)
    for name in (
        "BatchNormalization", "LayerNormalization", "GroupNormalization",
        "UnitNormalization", "RMSNormalization", "Normalization",
    )
    if hasattr(layers, name)
)


@dataclasses.dataclass
class _Step:
    """One operation call of the (flattened) graph."""

    op: object  # the keras Operation / Layer called
    args: tuple  # its call arguments (KerasTensors of the flat graph, and others)
    kwargs: dict
    outputs: list  # the KerasTensors it produced
    origin: object  # the nested-model call it was inlined from (None at top level)

    @property
    def inputs(self):
        """The KerasTensors it consumed."""
        return [x for x in keras.tree.flatten((self.args, self.kwargs))
                if isinstance(x, keras.KerasTensor)]

    @property
    def plain(self):
        """Whether it is `layer(x)`: one tensor, no other (non-None) argument."""
        return (
            isinstance(self.op, layers.Layer)
            and len(self.args) == 1
            and isinstance(self.args[0], keras.KerasTensor)
            and all(v is None for v in self.kwargs.values())
        )


@dataclasses.dataclass
class _Segment:
    """Consecutive steps from tensor `start` to tensor `end` (both cuts)."""

    start: object
    end: object
    steps: list
    parts: list = None  # the segments between consecutive cuts it is made of

    def __post_init__(self):
        self.parts = self.parts or [self]

    @property
    def names(self):
        return [step.op.name for step in self.steps]

    def __add__(self, other):
        return _Segment(self.start, other.end, self.steps + other.steps, self.parts + other.parts)


def _graph_of(model):
    """The Functional graph behind `model`: itself, or for a built
    `Sequential` its internal Functional model (`_functional`, private but
    the only way to reach it); `None` for models without a graph."""
    if hasattr(model, "_nodes_by_depth"):
        return model
    graph = getattr(model, "_functional", None)
    return graph if hasattr(graph, "_nodes_by_depth") else None


def _single_io(graph):
    return len(graph.inputs) == 1 and len(graph.outputs) == 1


def _flatten(graph, tensor_map, steps, training=None, origin=None):
    """Appends the steps of `graph` to `steps` in topological order.

    Nested single-input single-output Functional models are inlined: their
    inner layers are called again on the outer tensors, so that their blocks
    can become units too. A node whose inputs were replaced by such new
    tensors is called again as well; all other nodes are kept as they are, so
    a model without nesting is read without adding a single node to it.

    Args:
        graph: a Functional model.
        tensor_map: maps `id` of the graph's tensors to the flat graph's
            tensors; must hold the graph's input.
        steps: the list to append to.
        training: the `training` argument of the call being inlined; passed on
            to inner layers that take one (as Keras' call context would).
        origin: the outermost nested call being inlined.
    """
    for depth in sorted(graph._nodes_by_depth, reverse=True):
        for node in graph._nodes_by_depth[depth]:
            if node.is_input:
                continue
            op, args, kwargs = node.operation, node.arguments.args, node.arguments.kwargs
            inner = _graph_of(op)
            if (
                inner is not None
                and _single_io(inner)
                and len(node.input_tensors) == 1
                and not [k for k, v in kwargs.items() if v is not None and k != "training"]
            ):
                inner_map = {id(inner.inputs[0]): tensor_map[id(node.input_tensors[0])]}
                inner_training = kwargs.get("training", training)
                _flatten(inner, inner_map, steps, inner_training, origin or node)
                tensor_map[id(node.outputs[0])] = inner_map[id(inner.outputs[0])]
                continue
            # Inlined layers get the nested call's `training`, as Keras' call
            # context would give them (an explicit argument of their own wins).
            inject = training is not None and getattr(op, "_call_has_training_arg", False)
            changed = any(tensor_map[id(t)] is not t for t in node.input_tensors)
            if not (inject or changed):
                outputs = list(node.outputs)  # untouched: keep the original node
            else:
                args, kwargs = node.arguments.fill_in(tensor_map)
                if inject and kwargs.get("training") is None:
                    kwargs = {**kwargs, "training": training}
                outputs = keras.tree.flatten(op(*args, **kwargs))
            for old, new in zip(node.outputs, outputs):
                tensor_map[id(old)] = new
            steps.append(_Step(op, tuple(args), dict(kwargs), outputs, origin))


def _cut(steps, inputs, output):
    """Splits `steps` (topologically ordered) at the cut tensors.

    After each step, the *frontier* is the set of tensors produced so far
    that some later step still needs (the output always counts). When the
    frontier is a single tensor, every path to the output goes through it:
    it is a cut. This holds for any topological order.

    Returns:
        A list of `_Segment`s from `inputs` to `output`, in order.
    """
    pending = {}  # id(tensor) -> number of uses not yet run
    for step in steps:
        for t in step.inputs:
            pending[id(t)] = pending.get(id(t), 0) + 1
    pending[id(output)] = pending.get(id(output), 0) + 1
    frontier = {id(inputs): inputs}
    segments, start, first = [], inputs, 0
    for i, step in enumerate(steps):
        for t in step.inputs:
            pending[id(t)] -= 1
            if not pending[id(t)]:
                frontier.pop(id(t), None)
        for t in step.outputs:
            if pending.get(id(t), 0):
                frontier[id(t)] = t
        if len(frontier) == 1:
            (end,) = frontier.values()
            segments.append(_Segment(start, end, steps[first:i + 1]))
            start, first = end, i + 1
    return segments


def _rank(tensor):
    return len(tensor.shape)


def _tokens(op):
    """The `_`-separated tokens of an op's name, or none for a name Keras made
    up from the class (`re_lu_3`, `max_pooling2d`): such names say nothing
    about which block a layer belongs to."""
    auto = re.sub(r"\W+", "", type(op).__name__)  # Keras' own snake_case naming rule
    auto = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", auto)
    auto = re.sub("([a-z])([A-Z])", r"\1_\2", auto).lower()
    if re.fullmatch(rf"{re.escape(auto)}(_\d+)?", op.name):
        return []
    return op.name.split("_")


def _common_prefix(a, b):
    """The tokens that token lists `a` and `b` both start with."""
    prefix = []
    for x, y in zip(a, b):
        if x != y:
            break
        prefix.append(x)
    return prefix


def _affinity(op, segment):
    """How many leading name tokens `op` shares with a layer of `segment`."""
    mine = _tokens(op)
    return max((len(_common_prefix(mine, _tokens(s.op))) for s in segment.steps), default=0)


def _key(segment):
    """The block name of a segment: the name tokens all its (not auto-named)
    layers share."""
    names = [t for t in (_tokens(step.op) for step in segment.steps) if t]
    prefix = names[0] if names else []
    for other in names[1:]:
        prefix = _common_prefix(prefix, other)
    return prefix


def _unit_name(group):
    """A readable base name for a group: the name prefix (in `_` tokens) that
    all its layers share (`block_1`), else the longest that more than half of
    them share (`conv5_block3` for the last ResNet50V2 block, which also holds
    `post_bn` and `post_relu`), else its first layer's name. Names Keras made
    up from the class (`max_pooling2d`) are ignored."""
    if _key(group):
        return "_".join(_key(group))
    names = [tuple(t) for t in (_tokens(step.op) for step in group.steps) if t]
    best = ()
    for name in names:
        for length in range(len(best) + 1, len(name) + 1):
            prefix = name[:length]
            if sum(n[:length] == prefix for n in names) * 2 > len(names):
                best = prefix
    return "_".join(best) or group.names[0]


def _is_major(segment):
    """Whether a segment is a unit in its own right: a branching block, or a
    layer with weights of its own (not only a normalisation)."""
    if len(segment.steps) > 1:
        return True
    op = segment.steps[0].op
    return bool(getattr(op, "weights", None)) and not isinstance(op, _NORMALIZATIONS)


def _is_padding(segment):
    return "Padding" in type(segment.steps[-1].op).__name__


def _join(segments):
    return functools.reduce(operator.add, segments)


def _split_run(run, before, after):
    """How many of the minor segments in `run` join `before` (the rest join
    `after`): the split that best matches layer names, where a minor matches a
    neighbour by the leading name tokens it shares with one of its layers.
    On a tie, padding goes forward (it prepares the next conv) and the rest
    backward (normalisation and activation finish the previous layer)."""
    if before is None:
        return 0
    if after is None:
        return len(run)

    def score(k):
        back = sum(_affinity(m.steps[0].op, before) + (not _is_padding(m)) / 2 for m in run[:k])
        forth = sum(_affinity(m.steps[0].op, after) + _is_padding(m) / 2 for m in run[k:])
        return back + forth

    return max(range(len(run) + 1), key=lambda k: (score(k), k))


def _attach_minors(segments, head):
    """Joins each minor segment (one layer without weights of its own) to a
    major neighbour, by `_split_run`: `conv2_block1_preact_bn` goes with the
    `conv2_block1` block, `bn_Conv1` and `Conv1_relu` with `Conv1`, the ViT's
    `head_norm` with the head. Minors before the first major go forward.

    Returns:
        `(groups, to_head)`: the groups in order, and the minors (after the
        last major) that belong to the head.
    """
    groups, run = [], []
    for segment in segments:
        if not _is_major(segment):
            run.append(segment)
            continue
        k = _split_run(run, groups[-1] if groups else None, segment)
        if k:
            groups[-1] = _join([groups[-1]] + run[:k])
        groups.append(_join(run[k:] + [segment]))
        run = []
    if not groups:  # no layer with weights at all: one group (cannot be cut)
        return ([_join(run)] if run else []), []
    k = _split_run(run, groups[-1], head)
    if k:
        groups[-1] = _join([groups[-1]] + run[:k])
    return groups, run[k:]


def _merge_blocks(groups):
    """Merges neighbouring groups whose names say they are one block.

    Two groups merge when the tokens shared by all their layer names (their
    keys) share a non-empty prefix after which neither key goes on with an
    index-like token (one holding a digit): `block_1_expand` + `block_1_project`
    merge, `block_1` + `block_2`, `conv2_block1` + `conv2_block2` and
    `transformer_block_0` + `transformer_block_1` do not. Groups inlined from
    different nested models never merge.
    """
    merged = [groups[0]] if groups else []
    for group in groups[1:]:
        last = merged[-1]
        a, b = _key(last), _key(group)
        common = _common_prefix(a, b)
        rest = a[len(common):len(common) + 1] + b[len(common):len(common) + 1]
        same_origin = {s.origin for s in last.steps} == {s.origin for s in group.steps}
        if common and same_origin and not any(re.search(r"\d", t) for t in rest):
            merged[-1] = last + group
        else:
            merged.append(group)
    return merged


def _split_head(segments):
    """The trailing segments that are the head: those after the last one with
    a spatial or token output (rank > 2). When every output is rank 2 (an MLP
    body) the head is the last segment."""
    last_spatial = max((i for i, s in enumerate(segments) if _rank(s.end) > 2), default=None)
    if last_spatial is None:
        last_spatial = len(segments) - 2
    return segments[:last_spatial + 1], segments[last_spatial + 1:]


def _layer_name(name, taken):
    """`name` made a valid layer name that is not in `taken` (and taken)."""
    name = re.sub(r"[^A-Za-z0-9_.\-]", "_", name) or "unit"
    candidate, i = name, 1
    while candidate in taken:
        i += 1
        candidate = f"{name}_{i}"
    taken.add(candidate)
    return candidate


def _submodel(group, name):
    """A Functional model of the group's layers (shared, not copied).

    The layers are called again on a new input whose axes between batch and
    channels are free (`(None, None, C)` for images, `(None, C)` for tokens),
    so that the unit also takes other image sizes, as a `keras.applications`
    model built with `input_shape=(None, None, 3)` does. Where a layer cannot
    be called on free sizes, the unit keeps the original ones (`keras.Model`
    on the original intermediate tensors). Either way it computes exactly what
    the original graph does at the original size; at other sizes it works
    where its layers do (not, e.g., through `Flatten` before a `Dense`).
    """
    start = group.start
    shape = tuple(start.shape[1:])
    if len(shape) > 1:
        shape = (None,) * (len(shape) - 1) + shape[-1:]
    try:
        inputs = keras.Input(shape=shape, dtype=start.dtype, name=f"{name}_input")
        tensors = {id(start): inputs}

        def swap(x):
            return tensors[id(x)] if isinstance(x, keras.KerasTensor) else x

        for step in group.steps:
            args, kwargs = keras.tree.map_structure(swap, (step.args, step.kwargs))
            for old, new in zip(step.outputs, keras.tree.flatten(step.op(*args, **kwargs))):
                tensors[id(old)] = new
        return keras.Model(inputs, tensors[id(group.end)], name=name)
    except Exception:  # a layer that needs the static sizes: keep them
        return keras.Model(start, group.end, name=name)


class FunctionalForm(Form):
    """Cuts any single-input single-output Keras Functional model into units.

    **Cuts.** The graph is walked in topological order; a tensor is a cut when
    it is the only tensor still needed by the rest of the graph, i.e. every
    path from input to output passes through it. A residual block is never
    cut inside, because its shortcut keeps the block input alive.

    **Units.** The segments between consecutive cuts are grouped into units:

    1. A segment is *major* if it branches (more than one layer) or is a layer
       with weights that is not a normalisation layer (conv, dense, attention,
       a custom block layer, a nested subclassed model). Every other segment
       (normalisation, activation, padding, pooling, dropout, reshape, ...)
       joins a major neighbour, matched by layer names (see `_attach_minors`).
    2. Neighbouring groups whose layer names share a block prefix are merged
       (`block_1_expand`, `block_1_pad`, `block_1_project` -> one unit; see
       `_merge_blocks`).

    **Stem and head.** The stem is the first group: everything up to and
    including the first layer with weights and the layers that finish it
    (e.g. conv + BN + ReLU, or the library's `PatchEmbedding`). The head is
    every trailing segment after the last one with a rank > 2 output (pooling,
    flatten, dense, softmax), plus normalisation / activation layers just
    before it whose names say they belong to it (the ViT's `head_norm`); a
    model whose body works on vectors (an MLP) has only its last layer as head.
    With `include_top=False` there is no head.

    **Unit objects.** A group that is one layer called as `layer(x)` is that
    layer itself, with its own name (as in the library's own forms). Any other
    group is a Functional sub-model of the same layers, named `<block>_unit`
    (`<block>`: the name prefix its layers share, see `_unit_name`, e.g.
    `conv2_block1_unit`, `block_1_unit`, `block1a_unit`; the stem is named
    `stem`), made unique and valid. Sub-models SHARE the original layers and
    weights, which is what a learngene inherits; their input leaves the
    spatial / token axes free (`(None, None, C)`), so they also take other
    image sizes, except where a layer needs the original sizes.
    `fresh_unit` and `copy_unit` (inherited) clone a sub-model with
    `keras.models.clone_model`: new layers, freshly initialised or with copied
    weights, built for the input shape of the junction they are stacked at.

    **Nested models.** A layer that is itself a single-input single-output
    Functional or built Sequential model (a `keras.applications` backbone
    inside a `Sequential([backbone, head])` or a Functional model) is inlined,
    recursively: its blocks become units like any other. A `training=` argument
    given to the nested call is passed on to its layers. In that case the
    unit outputs live in a flattened copy of the graph (new calls of the same
    layers, from the same `model.inputs`), not in the original nested graph.
    Not handled: nested models with several inputs or outputs, or called with
    arguments other than `training` (they stay one opaque unit), and
    subclassed models, whose `call` has no graph to read.

    `split` is cached per model, so repeated calls return the same unit
    objects and add no new nodes to the model's layers.

    Example:
    ```python
    model = keras.applications.ResNet50V2(weights=None, input_shape=(32, 32, 3), classes=10)
    form = FunctionalForm()
    anatomy = form.split(model)
    [u.name for u in anatomy.units][:2]  # ['conv2_block1_unit', 'conv2_block2_unit']
    features = form.feature_model(model, anatomy)(images)  # one (batch, channels) per unit
    ```
    """

    name = "functional"
    description = "any single-input single-output Keras Functional model, cut at its cut tensors"

    def __init__(self):
        self._cache = weakref.WeakKeyDictionary()

    def matches(self, model):
        """True for a Functional (or built Sequential) model with exactly one
        input and one output."""
        graph = _graph_of(model)
        return graph is not None and _single_io(graph)

    def split(self, model):
        """Cuts `model` into stem, units and head.

        Args:
            model: a single-input single-output Functional or built
                Sequential `keras.Model`.

        Returns:
            An `Anatomy`.

        Raises:
            ValueError: if the model has no Functional graph, several inputs
                or outputs, or no cut point between its stem and its head.
        """
        try:
            return self._cache[model]
        except (KeyError, TypeError):
            pass
        anatomy = self._split(model)
        try:
            self._cache[model] = anatomy
        except TypeError:  # not weak-referenceable: just don't cache
            pass
        return anatomy

    def adapt_stem(self, stem, input_shape):
        """The stem itself, after checking that it takes `input_shape`.

        Raises:
            ValueError: when the stem is a sub-model built for another input
                shape (e.g. another number of channels).
        """
        inputs = getattr(stem, "inputs", None) if isinstance(stem, keras.Model) else None
        if inputs:
            expected, given = tuple(inputs[0].shape[1:]), tuple(input_shape)
            if len(expected) != len(given) or any(
                e is not None and e != g for e, g in zip(expected, given)
            ):
                raise ValueError(
                    f"The stem {stem.name!r} takes inputs of shape {expected}, the new task "
                    f"has {given}; resize or convert the inputs to that shape."
                )
        return stem

    def _split(self, model):
        graph = _graph_of(model)
        name = getattr(model, "name", type(model).__name__)
        if graph is None:
            if isinstance(model, keras.Sequential):
                raise ValueError(
                    f"Sequential model {name!r} is not built, so it has no graph to cut; "
                    "start it with keras.Input(shape) or call model.build(input_shape)."
                )
            raise ValueError(
                f"Model {name!r} ({type(model).__name__}) is a subclassed model with no "
                "Functional graph, so form 'functional' cannot see its layers; build it with "
                "the Functional API (keras.Model(inputs, outputs)) or register a Form for it."
            )
        if not _single_io(graph):
            raise ValueError(
                f"Model {name!r} has {len(graph.inputs)} inputs and {len(graph.outputs)} "
                "outputs; form 'functional' cuts models with exactly one input and one output. "
                "Build a single-input single-output model around the part to cut."
            )
        inputs = graph.inputs[0]
        tensor_map, steps = {id(inputs): inputs}, []
        _flatten(graph, tensor_map, steps)
        output = tensor_map[id(graph.outputs[0])]
        if not steps:
            raise ValueError(f"Model {name!r} has no layers between its input and output.")

        body, head = _split_head(_cut(steps, inputs, output))
        groups, to_head = _attach_minors(body, _join(head) if head else None)
        groups = _merge_blocks(groups)
        if len(groups) < 2:
            raise ValueError(
                f"Form 'functional' found no cut point in the body of model {name!r}: after "
                "the stem there is no tensor that every path from the input to the output "
                "passes through (e.g. a shortcut runs from the input to the head), so the body "
                "cannot be split into single-input single-output units. Use a model whose body "
                "is a chain of blocks (such as residual blocks), or register a Form for it."
            )
        head_steps = [s for m in to_head for s in m.steps] + [s for m in head for s in m.steps]

        taken = {step.op.name for step in steps}
        stem = self._unit(groups[0], "stem", taken)
        units = [self._unit(g, f"{_unit_name(g)}_unit", taken) for g in groups[1:]]
        return Anatomy(
            input_shape=tuple(inputs.shape[1:]),
            stem=stem,
            units=units,
            unit_outputs=[g.end for g in groups[1:]],
            stem_output=groups[0].end,
            head=[s.op for s in head_steps if isinstance(s.op, layers.Layer)],
        )

    @staticmethod
    def _unit(group, name, taken):
        """The keras object for a group: its layer, or a sub-model sharing
        the layers."""
        if len(group.steps) == 1:
            step = group.steps[0]
            if step.plain:
                return step.op
        return _submodel(group, _layer_name(name, taken))
