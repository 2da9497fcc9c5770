"""The plugin hooks of keras-learngene (pluggy project name `keras_learngene`).

A plugin is a module or object with functions marked `@keras_learngene.hookimpl`
whose names are the hooks below. Third-party packages expose it through the
entry-point group `keras_learngene`:

```toml
[project.entry-points.keras_learngene]
my_plugin = "my_package.plugin"
```

The library's own forms, similarities, strategies and methods are registered through
these same hooks (see `keras_learngene.default_plugins`).

Every `register(name, obj)` below also takes `obj` as a reference
`"package.module:attribute"`, imported the first time the name is used: listing
plugins (`klg plugins`) then imports no Keras.
"""

import pluggy

hookspec = pluggy.HookspecMarker("keras_learngene")
hookimpl = pluggy.HookimplMarker("keras_learngene")


@hookspec
def register_forms(register):
    """Register learngene forms: how a family of models is cut into units.

    Call `register(name, form)` once per form, where `form` is a
    `keras_learngene.forms.Form` instance (or subclass).
    """


@hookspec
def register_similarities(register):
    """Register similarity metrics between two layers' features.

    Call `register(name, metric)` once per metric, where `metric` is a
    `keras_learngene.similarity.Similarity` (instance or subclass) or a plain
    function `f(x, y) -> float` of two `(examples, features)` arrays that
    returns a score in [0, 1].
    """


@hookspec
def register_strategies(register):
    """Register inheritance strategies: how a descendant is laid out.

    Call `register(name, plan)` once per strategy, where
    `plan(num_learngene_units, n_layers)` returns the descendant's units in
    order as a list of `(source, index)` pairs: `("learngene", i)` uses
    learngene unit `i` itself, `("copy", i)` a new unit initialised with a copy
    of unit `i`'s weights, `("fresh", i)` a randomly initialised unit shaped
    like unit `i`. `n_layers` counts the slots that are not a learngene unit
    taken as it is; a `Strategy` subclass sized otherwise overrides
    `Strategy.new_units(num_units, depth)`.
    """


@hookspec
def register_methods(register):
    """Register condensing methods: how a learngene is made from an ancestry.

    Call `register(name, method)` once per method, where `method` is a
    `keras_learngene.methods.Method` instance or subclass. It is then usable
    as `keras_learngene.condense(..., method=name)` and
    `klg condense --method name`; its options are `condense`'s extra keyword
    arguments (CLI: `--option KEY=VALUE`).
    """


@hookspec
def register_commands(cli):
    """Add subcommands to the `klg` command line.

    `cli` is the `click.Group` of `klg`; decorate functions with
    `@cli.command()`.
    """
