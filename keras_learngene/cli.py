"""The `klg` command line.

Results go to stdout (`--json` for machines), progress and Keras logs to
stderr, user errors to stderr as `Error: ...` with exit code 1 (2 for bad
usage), never a traceback. An installed plugin's failure is one `Error:`
line naming the plugin (`klg -v`: with its traceback); a bug in the library
shows its traceback and asks for a report (`_fail_cleanly`).
"""

import contextlib
import dataclasses
import functools
import json
import os
import sys
import time
import traceback

import click

from keras_learngene._assets import DEFAULT_ANCESTRY_NAME, SHIPPED_ANCESTRIES

DATASET_CHOICES = ("embedded", "fashion_mnist", "digits", "glyphs")


class RegistryChoice(click.Choice):
    """A choice among what is registered (plugins included), looked up only
    when a command needs it, so `klg --help` starts no backend."""

    def __init__(self, kind):
        self.kind = kind
        super().__init__([], case_sensitive=True)

    @property
    def choices(self):
        from keras_learngene import plugins

        return tuple(plugins.registry(self.kind).in_order())

    @choices.setter
    def choices(self, value):  # click's __init__ assigns it
        pass

    def get_metavar(self, param, ctx=None):  # listing them in --help would import Keras
        return "NAME"

    def convert(self, value, param, ctx):
        try:
            return super().convert(value, param, ctx)
        except click.BadParameter as error:  # the name may be an excluded plugin's
            from keras_learngene import plugins

            error.message += plugins.excluded_note()
            raise


class PresetChoice(click.Choice):
    """A choice among the ancestry presets (`keras_learngene.models.PRESETS`)."""

    def __init__(self):
        super().__init__([], case_sensitive=True)

    @property
    def choices(self):
        from keras_learngene.models import PRESETS

        return tuple(PRESETS)

    @choices.setter
    def choices(self, value):
        pass

    def get_metavar(self, param, ctx=None):  # listing them in --help would import Keras
        return "PRESET"


def _parse_options(pairs):
    """`--option KEY=VALUE` pairs as a dict; a VALUE is read as JSON when it
    parses (numbers, true/false, null, lists), else kept as a string."""
    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"{pair!r}: write KEY=VALUE, e.g. pseudo_epochs=3.",
                                     param_hint="--option")
        try:
            options[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            options[key.strip()] = value
    return options


def _fail_cleanly(fn):
    """Ends a failed command with `Error: ...` and exit code 1: the message of
    one of the library's own user errors; a plugin's failure named in one line
    (its traceback with `klg -v`); a bug after its traceback, with a request
    to report it (`keras_learngene._failures` tells them apart)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (click.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except Exception as exc:
            from keras_learngene import _failures

            kind, message = _failures.explain(exc)
            ctx = click.get_current_context(silent=True)
            verbose = ctx is not None and ctx.find_root().params.get("verbose")
            if kind == "bug" or (kind == "plugin" and verbose):
                click.echo("".join(traceback.format_exception(exc)), err=True, nl=False)
            raise click.ClickException(message) from exc

    return wrapper


def _progress(message):
    click.echo(message, err=True)


def _keras_verbosity(quiet):
    """Keras' `verbose` for the training a command runs: 0 with --quiet, a
    progress bar on a terminal, one line per epoch in a log (not a terminal)."""
    if quiet:
        return 0
    return 1 if sys.stderr.isatty() else 2


QUIET_HELP = "No progress bars or per-epoch lines on stderr (results still print)."


@contextlib.contextmanager
def _keras_logs_to_stderr():
    """Keras prints its progress bars to stdout; stdout is for results."""
    with contextlib.redirect_stdout(sys.stderr):
        yield


def _check_out(path, overwrite):
    """Fails before any work when the output cannot be written."""
    if not path.endswith(".keras"):
        raise click.BadParameter(f"{path!r} must end in '.keras'.", param_hint="--out")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise click.ClickException(f"The folder {folder!r} does not exist; create it first.")
    if not os.access(folder, os.W_OK):
        raise click.ClickException(f"The folder {folder!r} is not writable.")
    if os.path.exists(path) and not overwrite:
        raise click.ClickException(f"{path!r} already exists; pass --overwrite to replace it.")


def _parse_classes(value):
    if value in ("base", "novel", "all") or value.startswith("script:"):
        return value
    try:
        return tuple(int(v) for v in value.split(","))
    except ValueError:
        raise click.BadParameter(
            f"{value!r}: use base, novel, all, script:<name> (--dataset glyphs, e.g. "
            "script:greek) or comma-separated class ids like 0,2,4,6.",
            param_hint="--classes",
        ) from None


def _parse_shape(value):
    if value is None:
        return None
    try:
        shape = tuple(int(v) for v in value.lower().split("x"))
    except ValueError:
        shape = ()
    if len(shape) != 3 or min(shape) < 1:
        raise click.BadParameter(f"{value!r}: write HxWxC with positive sizes, e.g. 32x32x1.",
                                 param_hint="--input-shape")
    return shape


def _emit(as_json, payload, text):
    click.echo(json.dumps(payload, indent=2) if as_json else text)


def _backend():
    import keras

    return keras.backend.backend()


class _Klg(click.Group):
    """`klg`'s group: an interrupt (Ctrl-C, SIGINT) ends any command with
    `Error: interrupted` and exit code 130, no traceback; outputs are written
    through a temporary file, which is removed, so nothing partial is left."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            from keras_learngene import _interrupt

            _interrupt.report()
            ctx.exit(_interrupt.EXIT_CODE)


def _set_verbosity(verbose):
    """Backend start-up chatter stays off a user's stderr unless `-v`: must run
    before the backend is imported (TensorFlow reads TF_CPP_MIN_LOG_LEVEL then)."""
    if verbose:
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0"
        import logging

        logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                            format="%(levelname)s:%(name)s: %(message)s")
    else:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        # the lines TensorFlow writes before it reads that variable (absl's "All log
        # messages before absl::InitializeLog()", oneDNN's notice) are filtered out
        from keras_learngene._quiet import quiet_tensorflow_import

        quiet_tensorflow_import()


def _verbose_in(argv):
    """Whether the global `-v/--verbose` comes before the command name."""
    for arg in argv:
        if arg in ("-v", "--verbose"):
            return True
        if not arg.startswith("-"):
            return False
    return False


@click.group(cls=_Klg, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="keras-learngene")
@click.option("-v", "--verbose", is_flag=True,
              help="Show the backend's start-up and Python logs (TF_CPP_MIN_LOG_LEVEL=0).")
def cli(verbose):
    """keras-learngene: condense an ancestry model into a learngene and inherit
    it into descendant models.

    The backend is Keras': set KERAS_BACKEND=tensorflow, jax or torch.
    """
    if verbose:  # main() saw it already; this is for `cli` invoked in-process
        _set_verbosity(True)


# ----------------------------------------------------------------------- condense
@cli.command()
@click.option("--ancestry", type=click.Path(dir_okay=False), default=None,
              help="Trained ancestry: a .keras file, or the name of a shipped ancestry: "
              f"{', '.join(SHIPPED_ANCESTRIES)} [default: {DEFAULT_ANCESTRY_NAME}].")
@click.option("--dataset", type=click.Choice(DATASET_CHOICES), default="embedded",
              show_default=True, help="Probe data set.")
@click.option("--classes", default="base", show_default=True,
              help="Probe classes: base, novel, all, script:<name> (glyphs) or ids like 1,3,5.")
@click.option("--data", "data_path", type=click.Path(exists=True), default=None,
              help="Your own data instead of --dataset: a folder with one sub-folder of images "
              "per class, or an .npz with x, y (and optional x_test, y_test). Condensing probes "
              "with every image (an .npz's x; x_test is left out).")
@click.option("--image-size", default=None, metavar="HxW",
              help="With --data: resize images to HxW [default: the model's input size].")
@click.option("--color-mode", type=click.Choice(["grayscale", "rgb", "rgba"]), default=None,
              help="With --data: colour mode [default: the model's channels].")
@click.option("--num-units", type=click.IntRange(min=1), default=3, show_default=True,
              help="Ancestry units kept in the learngene (k).")
@click.option("--n-layers", "old_n_layers", type=int, default=None, hidden=True,
              help="Deprecated name of --num-units.")
@click.option("--method", type=RegistryChoice("methods"), default="auto", show_default=True,
              help="Registered condensing method (plugins' included; `klg plugins --all` "
              "describes each).")
@click.option("--similarity", default=None,
              help="auto: registered similarity metric [default: linear_cka].")
@click.option("--selection", default=None,
              help="auto: how units are picked from the similarities: align, top_k or window "
              "[default: align].")
@click.option("--form", default=None, help="Registered form [default: detected].")
@click.option("--pseudo-depth", type=int, default=None,
              help="auto: units of the pseudo descendant [default: --num-units].")
@click.option("--pseudo-epochs", type=int, default=None,
              help="auto: epochs of pseudo-descendant training [default: 2].")
@click.option("--option", "-o", "extra", multiple=True, metavar="KEY=VALUE",
              help="Any option of the method (repeatable), e.g. -o tasks=4 for heur.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", default="learngene.keras", show_default=True, help="Output file.")
@click.option("--overwrite", is_flag=True, help="Replace --out if it exists.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option("--quiet", "-q", is_flag=True, help=QUIET_HELP)
@_fail_cleanly
def condense(ancestry, dataset, classes, data_path, image_size, color_mode, num_units,
             old_n_layers, method, similarity, selection, form, pseudo_depth, pseudo_epochs,
             extra, seed, out, overwrite, as_json, quiet):
    """Condense an ancestry into a learngene and save it.

    With no arguments: the shipped tiny ViT ancestry, probed with the base
    classes of the shipped Fashion-MNIST subset, condensed by Auto Learngene.
    """
    if old_n_layers is not None:
        _progress("warning: --n-layers is deprecated for condense; use --num-units.")
        num_units = old_n_layers
    options = {k: v for k, v in (("similarity", similarity), ("selection", selection),
                                 ("pseudo_depth", pseudo_depth),
                                 ("pseudo_epochs", pseudo_epochs)) if v is not None}
    options.update(_parse_options(extra))
    _check_out(out, overwrite)
    import keras_learngene as klg
    from keras_learngene._io import load_keras

    chosen = klg.plugins.get_method(method)
    _check_method_options(chosen, options)  # before loading or training anything
    shipped = _shipped_ancestry_name(ancestry)  # before loading or training anything
    _progress(f"backend: {_backend()}")
    model = (klg.load_shipped_ancestry(shipped) if shipped is not None
             else load_keras(ancestry, what="ancestry"))
    # every probe image the user gave: a held-out split would only shrink the probe set
    task = _load_task(dataset, classes, data_path, image_size, color_mode, model.input_shape,
                      test_fraction=0)
    _progress(f"condensing {model.name} with {method} on {task.name} "
              f"({len(task.x_train)} images given{'' if chosen.needs_data else ', unused'})")
    with _keras_logs_to_stderr():
        learngene = klg.condense(model, (task.x_train, task.y_train), num_units=num_units,
                                 method=method, form=form, seed=seed,
                                 verbose=_keras_verbosity(quiet), **options)
    learngene.save(out, overwrite=overwrite)
    p = learngene.provenance
    payload = {"out": out, "bytes": os.path.getsize(out), **_summary(learngene)}
    _emit(as_json, payload, _condense_table(learngene, out) + f"\nseconds: {p['seconds']}")


def _shipped_ancestry_name(ancestry):
    """The shipped ancestry `--ancestry` names, or None for a file. A file of
    that name wins; a value that is neither is an error naming both."""
    if ancestry is None:
        return DEFAULT_ANCESTRY_NAME
    if os.path.exists(ancestry):
        return None
    if ancestry in SHIPPED_ANCESTRIES:
        return ancestry
    if not ancestry.endswith(".keras") and os.sep not in ancestry:
        raise click.BadParameter(
            f"{ancestry!r} is neither a file nor a shipped ancestry; the shipped ancestries: "
            f"{', '.join(SHIPPED_ANCESTRIES)}.",
            param_hint="--ancestry")
    return None  # a missing file: load_keras says so, naming the path


def _load_task(dataset, classes, data_path, image_size, color_mode, input_shape, shots=None,
               seed=0, test_fraction=0.2):
    """The built-in data set, or the user's `--data` shaped like the model's input (with
    `test_fraction` of each class held out when the data has no test split of its own)."""
    import keras_learngene as klg

    if data_path is None:
        if image_size or color_mode:
            raise click.UsageError("--image-size and --color-mode go with --data.")
        task = klg.datasets.load_task(dataset, classes=_parse_classes(classes), shots=shots,
                                      seed=seed)
        if task.num_classes < 2:
            raise click.BadParameter(f"{classes!r} is one class; a classifier needs at least two, "
                                     "e.g. 0,1.", param_hint="--classes")
        return task
    _check_fits_model(image_size, color_mode, input_shape)
    task = klg.datasets.load_data(data_path, image_size=image_size, color_mode=color_mode,
                                  input_shape=input_shape, test_fraction=test_fraction, seed=seed)
    if len(set(task.y_train.tolist())) < 2:
        raise click.ClickException(
            f"--data {data_path!r} holds images of one class only ({task.class_names[0]!r}); a "
            "classifier needs at least two: put each class's images in a sub-folder of its own "
            "(or give an .npz whose y holds two labels or more)."
        )
    if shots is not None:
        keep = klg.datasets.sample_shots(task.y_train, shots, seed)
        task = dataclasses.replace(task, x_train=task.x_train[keep], y_train=task.y_train[keep],
                                   name=f"{task.name}/{shots}-shot/seed={seed}")
    return task


def _check_fits_model(image_size, color_mode, input_shape):
    """`--image-size` / `--color-mode` that the model cannot take fail naming the option
    (both default to the model's input)."""
    from keras_learngene.datasets._files import COLOR_MODES, parse_image_size

    try:
        size = parse_image_size(image_size)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--image-size") from None
    if input_shape is None:
        return
    height, width, channels = tuple(input_shape)[-3:]
    if color_mode and channels and COLOR_MODES[color_mode][1] != channels:
        mode = next((m for m, (_, c) in COLOR_MODES.items() if c == channels), None)
        raise click.BadParameter(
            f"{color_mode!r} gives images of {COLOR_MODES[color_mode][1]} channels, but the "
            f"model takes {channels}; leave --color-mode out (it follows the model)"
            + (f" or give {mode}." if mode else "."), param_hint="--color-mode")
    if size and height and width and size != (height, width):
        raise click.BadParameter(
            f"{image_size!r} does not fit the model, which takes {height}x{width} images; leave "
            f"--image-size out (it follows the model) or give {height}x{width}.",
            param_hint="--image-size")


def _check_method_options(method, options):
    unknown = sorted(set(options) - set(method.options))
    if unknown:
        raise click.BadParameter(
            f"method {method.name!r} takes no option {', '.join(map(repr, unknown))}; its "
            f"options: {', '.join(method.options) or 'none'}.", param_hint="--option")


def _summary(learngene):
    p = learngene.provenance
    keys = ("method", "form", "num_units", "options", "source_units", "source_names", "scores",
            "matches", "strategy", "seed", "backend", "seconds")
    return {k: p.get(k) for k in keys if k in p} | {"params": int(learngene.count_params())}


def _condense_table(learngene, out):
    """The learngene in words: what its method recorded, explained by the
    method itself when it is installed (else by the generic rendering)."""
    from keras_learngene import plugins
    from keras_learngene.methods._base import describe_units

    p = learngene.provenance
    method = p.get("method") or "no method recorded"  # a learngene built by hand may lack it
    lines = [f"learngene: {out}  ({method}, form {learngene.form or p.get('form')}, "
             f"{learngene.count_params():,} params)"]
    try:
        describe = plugins.get_method(str(p.get("method"))).describe
    except plugins.PluginError:  # condensed by a plugin that is not installed here
        describe = describe_units
    return "\n".join(lines + list(describe(p)))


# ------------------------------------------------------------------------ inherit
@cli.command()
@click.argument("learngene_path", metavar="LEARNGENE", type=click.Path(dir_okay=False))
@click.option("--n-layers", type=click.IntRange(min=0), default=None,
              help="New units: every unit that is not a learngene unit taken as it is (give "
              "this or --depth).")
@click.option("--depth", type=click.IntRange(min=1), default=None,
              help="All the descendant's units, the learngene's included (not the stem, head "
              "or bridges); the strategy decides how many are new.")
@click.option("--num-classes", type=click.IntRange(min=1), required=True,
              help="Classes of the new task.")
@click.option("--strategy", type=RegistryChoice("strategies"), default=None,
              help="Registered inheritance strategy [default: the one the learngene's method "
              "asks for; stack for the built-ins].")
@click.option("--input-shape", default=None, help="HxWxC of the new task [default: learngene's].")
@click.option("--head", type=click.Choice(["linear", "mlp"]), default="linear", show_default=True)
@click.option("--dropout", type=float, default=0.0, show_default=True)
@click.option("--freeze", is_flag=True, help="Freeze the inherited layers.")
@click.option("--fresh-init", type=click.Choice(["random", "identity"]), default="random",
              show_default=True,
              help="How new units start: random (the paper's inheritance) or as the identity, "
              "so the untrained descendant computes the learngene's features (then train with "
              "--fit-head).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", default="descendant.keras", show_default=True)
@click.option("--overwrite", is_flag=True)
@click.option("--json", "as_json", is_flag=True)
@_fail_cleanly
def inherit(learngene_path, n_layers, depth, num_classes, strategy, input_shape, head, dropout,
            freeze, fresh_init, seed, out, overwrite, as_json):
    """Build a descendant from a LEARNGENE file and save it (untrained).

    Size it by its new units (--n-layers) or by all its units (--depth): with
    an Auto Learngene of 3 units, --n-layers 3 and --depth 6 build the same
    descendant; every unit of a TLEG descendant is new (--n-layers 3 is
    --depth 3); an SWS learngene of 3 stages keeps each stage's unit and
    copies it (--n-layers 3 is --depth 6).
    """
    if (n_layers is None) == (depth is None):
        raise click.UsageError("Give exactly one of --n-layers (new units) or --depth (all "
                               "units, the learngene's included).")
    if num_classes == 1:
        raise click.BadParameter("1: a head of one output cannot learn (the softmax of one "
                                 "logit is always 1); a task needs at least 2 classes.",
                                 param_hint="--num-classes")
    input_shape = _parse_shape(input_shape)
    _check_out(out, overwrite)
    import keras_learngene as klg
    from keras_learngene.learngene import save_atomically

    learngene = klg.Learngene.load(learngene_path)
    model = klg.inherit(learngene, n_layers, depth=depth, num_classes=num_classes,
                        strategy=strategy, input_shape=input_shape, head=head, dropout=dropout,
                        freeze_learngene=freeze, seed=seed, fresh_init=fresh_init)
    save_atomically(model, out, overwrite=overwrite)
    inherited = klg.inherited_layers(model)
    payload = {
        "out": out, "params": int(model.count_params()), "bytes": os.path.getsize(out),
        "learngene_bytes": os.path.getsize(learngene_path),
        "strategy": strategy or learngene.provenance.get("strategy") or "stack",
        "fresh_init": fresh_init,
        "layers": [layer.name for layer in model.layers[1:]], "inherited": inherited,
    }
    text = (f"descendant: {out} ({payload['params']:,} params, {payload['bytes']:,} bytes; "
            f"learngene {payload['learngene_bytes']:,} bytes)\n"
            + "\n".join(f"  {name}" + (f"  <- {inherited[name]}" if name in inherited else "")
                        for name in payload["layers"]))
    _emit(as_json, payload, text)


# -------------------------------------------------------------------------- train
@cli.command()
@click.option("--preset", type=PresetChoice(), default=None,
              help="Ancestry preset to build and train.")
@click.option("--model", "model_path", type=click.Path(dir_okay=False), default=None,
              help="A saved model (e.g. a descendant) to train instead of a preset.")
@click.option("--dataset", type=click.Choice(DATASET_CHOICES), default="embedded",
              show_default=True)
@click.option("--classes", default="all", show_default=True,
              help="base, novel, all, script:<name> (glyphs) or ids like 0,2,4,6.")
@click.option("--data", "data_path", type=click.Path(exists=True), default=None,
              help="Your own data instead of --dataset: a folder with one sub-folder of images "
              "per class, or an .npz with x, y (and optional x_test, y_test; otherwise a "
              "fifth of each class is held out for testing).")
@click.option("--image-size", default=None, metavar="HxW",
              help="With --data: resize images to HxW [default: the model's input size].")
@click.option("--color-mode", type=click.Choice(["grayscale", "rgb", "rgba"]), default=None,
              help="With --data: colour mode [default: the model's channels].")
@click.option("--shots", type=int, default=None, help="K training images per class.")
@click.option("--epochs", type=int, default=5, show_default=True)
@click.option("--batch-size", type=int, default=64, show_default=True)
@click.option("--lr", type=float, default=1e-3, show_default=True)
@click.option("--fit-head", is_flag=True,
              help="Before training, align the batch norms to the data and fit the head by "
              "logistic regression on the model's features (keras_learngene.head_start); "
              "its training accuracy is reported as step 0.")
@click.option("--warmup", type=click.FloatRange(0, 1, max_open=True), default=0.1,
              show_default=True, help="Share of the steps spent warming the learning rate up.")
@click.option("--inherited-lr-scale", type=click.FloatRange(min=0), default=1.0,
              show_default=True,
              help="Learning-rate factor of a descendant's inherited layers (0 freezes them).")
@click.option("--flip/--no-flip", default=None,
              help="Flip images horizontally in the augmentation [default: as the data set "
              "says: fashion_mnist, embedded and cifar_fs yes; glyphs, digits and --data no].")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--distribution", type=click.Choice(["none", "data_parallel", "model_parallel"]),
              default="none", show_default=True,
              help="Keras distribution (JAX backend only): data_parallel splits each batch "
              "over the devices; model_parallel also splits the ViT's attention and MLP "
              "kernels over a 'model' mesh axis.")
@click.option("--devices", default=None,
              help="Devices to train on: a count (the first N) or names like gpu:0,gpu:1 "
              "[default: all with a distribution, else the first].")
@click.option("--mixed-precision", "precision",
              type=click.Choice(["float32", "mixed_float16", "mixed_bfloat16"]),
              default="float32", show_default=True,
              help="Keras dtype policy to build and train in (variables stay float32).")
@click.option("--out", default="model.keras", show_default=True)
@click.option("--overwrite", is_flag=True)
@click.option("--json", "as_json", is_flag=True)
@click.option("--quiet", "-q", is_flag=True, help=QUIET_HELP)
@_fail_cleanly
def train(preset, model_path, dataset, classes, data_path, image_size, color_mode, shots, epochs,
          batch_size, lr, fit_head, warmup, inherited_lr_scale, flip, seed, distribution,
          devices, precision, out, overwrite, as_json, quiet):
    """Train a preset ancestry or a saved model on a data set and save it.

    Says on stderr which backend, devices, distribution and precision it
    trains with (and --json reports them). A saved model is copied into the
    chosen precision; the saved result keeps float32 weights.
    """
    if (preset is None) == (model_path is None):
        raise click.UsageError("Give exactly one of --preset or --model.")
    if epochs < 1 or batch_size < 1:
        raise click.BadParameter("--epochs and --batch-size must be at least 1.")
    _check_out(out, overwrite)

    import keras_learngene as klg
    from keras_learngene import distribute
    from keras_learngene._io import load_keras
    from keras_learngene.learngene import save_atomically

    setting = distribute.make_distribution(distribution, devices)  # fails early off JAX
    saved = None if model_path is None else load_keras(model_path, what="model")
    task = _load_task(dataset, classes, data_path, image_size, color_mode,
                      None if saved is None else saved.input_shape, shots=shots, seed=seed)
    with distribute.scope(setting, precision, devices) as setting:
        if preset is not None:
            model = klg.models.build_preset(preset, task.input_shape, task.num_classes)
        else:
            model = distribute.rebuild(saved)
            if model.output_shape[-1] != task.num_classes:
                raise click.ClickException(
                    f"{model_path!r} has {model.output_shape[-1]} outputs but the task has "
                    f"{task.num_classes} classes; build it with --num-classes "
                    f"{task.num_classes}."
                )
        where = distribute.describe_devices(setting, devices)
        _progress(f"backend: {where['backend']}; devices: {', '.join(where['devices'])}; "
                  f"distribution: {distribution}; precision: {precision}")
        head = None
        if fit_head:
            head = klg.head_start(model, task.x_train, task.y_train)
            _progress(f"fitted the head of {model.name}: training accuracy "
                      f"{head['train_accuracy']:.4f} before any step")
        _progress(f"training {model.name} on {task.name}")
        start = time.perf_counter()
        with _keras_logs_to_stderr():
            result = klg.training.train(model, task.x_train, task.y_train, epochs=epochs,
                                        batch_size=batch_size, learning_rate=lr, seed=seed,
                                        verbose=_keras_verbosity(quiet),
                                        distribution=setting,
                                        mixed_precision=precision,
                                        warmup_fraction=warmup,
                                        inherited_lr_scale=inherited_lr_scale,
                                        flip=task.flip if flip is None else flip)
    accuracy = klg.training.evaluate(model, task.x_test, task.y_test)
    save_atomically(model, out, overwrite=overwrite)
    payload = {
        "out": out, "model": model.name, "task": task.name, "backend": where["backend"],
        "devices": where["devices"], "distribution": distribution, "precision": precision,
        "epochs": epochs, "train_examples": len(task.x_train),
        "test_examples": len(task.x_test), "test_accuracy": round(accuracy, 4),
        "train_seconds": round(result["seconds"], 2),
        "seconds": round(time.perf_counter() - start, 2),
        # the steady rate: compiling (the first step) is reported apart
        "images_per_second": round(result["steady_images_per_second"]
                                   or result["images_per_second"], 1),
        "compile_seconds": _round(result["compile_seconds"], 2),
        "head_start": head,
    }
    speed = (f"{payload['images_per_second']} img/s after compiling for "
             f"{payload['compile_seconds']} s" if payload["compile_seconds"] is not None
             else f"{payload['images_per_second']} img/s, compiling included")
    _emit(as_json, payload,
          f"{model.name} on {task.name}: test accuracy {accuracy:.4f} "
          f"({len(task.x_test)} images), {payload['train_seconds']} s training "
          f"({speed}); saved {out}")


def _round(value, digits):
    return None if value is None else round(value, digits)


# ------------------------------------------------------------------------ inspect
@cli.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--png", default=None, help="Write the similarity heatmap to this PNG "
              "(needs matplotlib).")
@click.option("--json", "as_json", is_flag=True)
@_fail_cleanly
def inspect(file, png, as_json):
    """Show a learngene's provenance (and its similarity heatmap)."""
    import keras_learngene as klg

    learngene = klg.Learngene.load(file)
    if png:
        klg.plot_similarity(learngene, png)
    p = dict(learngene.provenance)
    payload = {"file": file, "params": int(learngene.count_params()),
               "units": learngene.summary_rows(), "provenance": p, "png": png}
    text = _condense_table(learngene, file) + "\n" + "\n".join(
        f"{k}: {json.dumps(v)}" for k, v in p.items() if k not in ("matrix", "heatmap"))
    if png:
        text += f"\nheatmap: {png}"
    _emit(as_json, payload, text)


# -------------------------------------------------------------------------- bench
@cli.command()
@click.option("--profile",
              type=click.Choice(["quick", "pilot", "full", "family", "headstart", "headstart-grid",
                                 "gpu"]),
              default="quick", show_default=True,
              help="quick: a few minutes, tiny ancestries on six glyph scripts (a smoke test); "
              "pilot: the committed pilot; full: protocol v2 of docs/benchmark.md (about 150 "
              "minutes on 2 idle CPU cores, hours on a loaded machine; resumable); family: every "
              "condensing method side by side on full's glyph tasks, 5-way K=1 and 5 (about "
              "80 minutes; give it full's --cache to reuse its ancestries); headstart: "
              "descendants that start from what they inherit (identity units, fitted head, "
              "gentle fine-tuning) against the paper's inheritance, on full's cache; "
              "headstart-grid: its lr x batch-size grid (about 25 minutes); gpu: the "
              "larger "
              "profile for a GPU.")
@click.option("--out", default="klg-bench", show_default=True,
              help="Output folder: runs.jsonl, meta.json, report.md, images/. Run again with "
              "the same folder to resume; finished runs are never recomputed.")
@click.option("--cache", default=None, help="Folder of trained ancestries and learngenes "
              "[default: OUT/cache].")
@click.option("--data", "data_path", default=None,
              help="Folder of the Fashion-MNIST IDX files (or CIFAR-100) [default: searched].")
@click.option("--methods", default=None,
              help="Comma-separated methods to compare instead of the profile's: scratch, "
              "ancestry and registered condensing methods (plugins' included).")
@click.option("--report-only", is_flag=True,
              help="Only rewrite report.md and the plots from the runs already in --out.")
@click.option("--json", "as_json", is_flag=True, help="Print the claims summary as JSON.")
@_fail_cleanly
def bench(profile, out, cache, data_path, methods, report_only, as_json):
    """Benchmark the four Learngene claims against training from scratch.

    Trains (or reuses) the ViT and CNN ancestries on the base classes,
    condenses them with every method, trains descendants and the baselines
    (scratch, the whole ancestry, and every registered condensing method the
    profile or --methods names) with one recipe and step budget on K-shot
    novel-class tasks, and writes the raw runs, a Markdown report with one table and
    verdict per claim, and PNG plots. Progress goes to stderr.
    """
    from keras_learngene import bench as klg_bench

    if report_only:
        if not os.path.isfile(os.path.join(out, "meta.json")):
            raise click.ClickException(f"{out!r} holds no benchmark results (no meta.json); "
                                       "run `klg bench` first.")
        path = klg_bench.write_report(out)
    else:
        chosen = klg_bench.get_profile(profile)
        if methods:
            names = tuple(m.strip() for m in methods.split(",") if m.strip())
            if "scratch" not in names:
                raise click.BadParameter("the claims are measured against scratch: include it.",
                                         param_hint="--methods")
            chosen = klg_bench.with_methods(chosen, names)
        path = klg_bench.run_bench(chosen, out, cache=cache, data_path=data_path)
    summary = klg_bench.summarize(klg_bench.load_records(out), _read_json(
        os.path.join(out, "meta.json")))
    lines = [f"report: {path}"] + [
        f"{row['claim']}: " + "; ".join(f"{arch}: {v['verdict']}"
                                        for arch, v in row["archs"].items())
        for row in summary["claims"]]
    _emit(as_json, {"report": path, "summary": summary}, "\n".join(lines))


def _read_json(path):
    with open(path) as f:
        return json.load(f)


# ------------------------------------------------------------------------ plugins
@cli.command("plugins")
@click.option("--all", "include_builtin", is_flag=True, help="Include the built-in plugins.")
def plugins_command(include_builtin):
    """List installed plugins and what each registered, as JSON."""
    import warnings

    from keras_learngene import plugins

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rows = plugins.describe_plugins(include_builtin)
    for warning in caught:  # name clashes, said plainly (the JSON lists them as conflicts)
        click.echo(f"warning: {warning.message}", err=True)
    click.echo(json.dumps(rows, indent=2))


def main():
    """Entry point of the `klg` console script (started by the `_klg` launcher,
    so that the library, Keras and the backend are imported only when a
    command needs them: `klg --help` answers at once)."""
    # before anything can import a backend, plugins included: TensorFlow's C++
    # start-up lines are noise on a user's stderr (`klg -v` shows them)
    _set_verbosity(_verbose_in(sys.argv[1:]))
    from keras_learngene import _check_backend_setting, _interrupt

    try:
        _check_backend_setting()
    except ImportError as error:
        click.echo(f"Error: {error}", err=True)
        sys.exit(1)

    _interrupt.install()  # Ctrl-C ends any command with exit code 130, nothing partial left
    from keras_learngene import plugins

    plugins.load_commands(cli)
    cli(prog_name="klg")


if __name__ == "__main__":
    main()
