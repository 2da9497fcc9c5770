"""Shared fixtures: tiny models and data, so every test takes seconds.

The suite runs once per backend (`KERAS_BACKEND=tensorflow|jax|torch`).
Tests marked `once` check what does not depend on the backend (the CLI's
arguments and messages, start-up, signals, the docs, report rendering, the
benchmark's bookkeeping): they run on the `ONCE_BACKEND` pass only (or the
pass of `once(backend=...)`), and the other passes deselect them. Everything
that computes with tensors is unmarked and runs on every backend.
Installed third-party plugins are not loaded unless a test asks
(`KLG_LOAD_PLUGINS` is set to empty here).
"""

import os

os.environ.setdefault("KLG_LOAD_PLUGINS", "")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from keras_learngene import models, plugins, training  # noqa: E402

# Tiny models train for a few steps: compile time dominates, so compile less.
# On TensorFlow tracing a tiny model's train step takes seconds, more than
# running its few steps eagerly, so in-process tests run eagerly there
# (`run_eagerly=True` unless a test is marked `graph`, or KLG_TEST_GRAPH=1 for
# every test; KLG_TEST_EAGER=tensorflow,jax names the backends that do). JAX
# gained nothing eagerly and stays jitted; torch is eager anyway. Graph mode
# is still exercised: by `graph` tests, and by every test that runs `klg` or a
# tutorial in a subprocess (the library's defaults).
if keras.backend.backend() == "jax":
    import jax

    jax.config.update("jax_disable_most_optimizations", True)
elif keras.backend.backend() == "tensorflow":
    training.DEFAULT_JIT_COMPILE = False
elif keras.backend.backend() == "torch":
    import torch

    torch.set_num_threads(1)  # two intra-op threads are much slower on tiny tensors here
    # oneDNN (torch 2.13.0+cpu ships oneDNN 3.12.0) corrupts the heap on AVX2
    # CPUs (AMD EPYC here) in the weight gradient of a channels-last 1x1
    # stride-2 conv with fewer than 8 input channels (its `jit_1x1:avx2`
    # backward_weights kernel): the tiny ResNet's shortcut, so the pass aborted
    # with `corrupted size vs. prev_size` (issue 27; scripts/torch_heap_repro.py).
    # More threads only make it rarer. Torch's own CPU convolutions are as fast
    # on these tiny tensors, and tests/test_torch_native.py checks the setting.
    torch.backends.mkldnn.enabled = False

EAGER = {"on": keras.backend.backend() in os.environ.get("KLG_TEST_EAGER", "tensorflow").split(",")
         and not os.environ.get("KLG_TEST_GRAPH")}
_compile = keras.Model.compile


def _test_compile(self, *args, **kwargs):
    if EAGER["on"]:
        kwargs.setdefault("run_eagerly", True)
    return _compile(self, *args, **kwargs)


keras.Model.compile = _test_compile


@pytest.fixture(autouse=True)
def _graph_mode(request):
    """A test marked `graph` compiles its models as the library does."""
    if request.node.get_closest_marker("graph") is None:
        yield
        return
    was, EAGER["on"] = EAGER["on"], False
    yield
    EAGER["on"] = was


TINY_SHAPE = (8, 8, 1)
ONCE_BACKEND = "tensorflow"


def pytest_configure(config):
    config.addinivalue_line(
        "markers", f"once(backend='{ONCE_BACKEND}'): backend-independent; runs on that "
        "backend's pass only")
    config.addinivalue_line("markers", "graph: compiles as the library does, never eagerly")


def _once_on(item):
    mark = item.get_closest_marker("once")
    return None if mark is None else mark.kwargs.get("backend", ONCE_BACKEND)


def pytest_collection_modifyitems(config, items):
    here = keras.backend.backend()
    elsewhere = [item for item in items if _once_on(item) not in (None, here)]
    if elsewhere:
        config.hook.pytest_deselected(items=elsewhere)
        items[:] = [item for item in items if _once_on(item) in (None, here)]


# Tiny versions of each ancestry family: same structure, seconds to train.
TINY_BUILDERS = {
    "vit": lambda n=3: models.VisionTransformer(
        TINY_SHAPE, n, patch_size=4, num_layers=4, hidden_dim=8, num_heads=2, mlp_dim=16),
    "vgg": lambda n=3: models.VGGNet(
        TINY_SHAPE, n, filters=(4, 4, 8, 8), pool_after=(1,), stem_filters=4),
    "resnet": lambda n=3: models.ResNet(TINY_SHAPE, n, filters=(4, 4, 8, 8), stem_filters=4),
}


def tiny_data(n=96, classes=3, seed=0, shape=TINY_SHAPE):
    """Images whose class is visible (a bright quadrant), so a model learns it."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % classes
    x = rng.uniform(0, 0.3, size=(n,) + shape).astype("float32")
    h, w = shape[0] // 2, shape[1] // 2
    for c in range(classes):
        x[y == c, (c // 2) * h:(c // 2 + 1) * h, (c % 2) * w:(c % 2 + 1) * w] += 0.7
    return x, y.astype("int64")


def forged_npz(path, shape, dtype="<f4", data=b"\0" * 64):
    """An .npz whose 'x' header claims `shape` but holds only `data`."""
    import io
    import zipfile

    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": dtype, "fortran_order": False, "shape": shape})
    labels = io.BytesIO()
    np.save(labels, np.zeros(4, np.int64))
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("x.npy", header.getvalue() + data)
        archive.writestr("y.npy", labels.getvalue())
    return str(path)


def body_units(descendant):
    """A descendant's units, read from their names (`keras_learngene._names`):
    `(inherited, new)` lists, the learngene units taken as they are and the
    copies and fresh units; the stem, bridges and head are neither."""
    from keras_learngene import _names as names

    inherited, new = [], []
    for layer in descendant.layers:
        if layer.name.startswith(names.INHERITED) and layer.name != names.INHERITED_STEM:
            inherited.append(layer.name)
        elif layer.name.startswith(names.FRESH) or (
                names.source_of(layer.name) not in (None, names.STEM)):
            new.append(layer.name)
    return inherited, new


def train_briefly(model, x, y, epochs=2):
    from keras_learngene import training

    training.train(model, x, y, epochs=epochs, batch_size=32, augment=False, verbose=0)
    return model


@pytest.fixture(scope="session")
def data():
    return tiny_data()


@pytest.fixture(scope="session", params=sorted(TINY_BUILDERS))
def trained_ancestry(request, data):
    """A tiny ancestry of each family, trained for a few steps (session-wide)."""
    keras.utils.set_random_seed(0)
    return train_briefly(TINY_BUILDERS[request.param](), *data)


@pytest.fixture
def fresh_plugins(monkeypatch):
    """A plugin manager reset to the built-ins, restored afterwards."""
    monkeypatch.setenv("KLG_LOAD_PLUGINS", "")
    plugins.reset()
    yield plugins
    plugins.reset()


def backend():
    return keras.backend.backend()


def randomize_weights(model, seed=0, scale=0.2):
    """Sets every weight of `model` to seeded random values (moving variances
    positive), so that equal outputs mean equal weights, not default inits
    (zero class tokens, zero-gamma residual branches, unit BN statistics)."""
    rng = np.random.default_rng(seed)
    for variable in model.weights:
        shape = tuple(variable.shape)
        if "variance" in variable.path:
            value = rng.uniform(0.5, 1.5, size=shape)
        else:
            value = rng.normal(0.0, scale, size=shape)
        variable.assign(value.astype(variable.dtype))
    return model


@pytest.fixture(scope="session")
def model_zoo():
    """Every tiny builder (`"tiny:vit"`, ...) and every preset of
    `models.PRESETS` (`"preset:vit_tiny"`, ..., built on TINY_SHAPE images),
    with 3 classes and random weights (`randomize_weights`). Shared by the
    session: do not train or change them (build your own for that)."""
    keras.utils.set_random_seed(0)
    zoo = {f"tiny:{name}": build(3) for name, build in sorted(TINY_BUILDERS.items())}
    for name in sorted(models.PRESETS):
        zoo[f"preset:{name}"] = models.build_preset(name, image_shape=TINY_SHAPE, num_classes=3)
    zoo.update(_hub_backbones())
    return {kind: randomize_weights(model, seed=i) for i, (kind, model) in enumerate(zoo.items())}


def _hub_backbones():
    """Tiny keras-hub backbones (`"hub:vit"`, ...) when keras-hub is installed
    (the `hub` extra), so its forms meet the conformance suite."""
    import importlib.util

    if importlib.util.find_spec("keras_hub") is None:
        return {}
    import keras_hub

    return {
        "hub:vit": keras_hub.models.ViTBackbone(
            image_shape=TINY_SHAPE, patch_size=4, num_layers=2, num_heads=2, hidden_dim=8,
            mlp_dim=16),
        "hub:resnet": keras_hub.models.ResNetBackbone(
            input_conv_filters=[64], input_conv_kernel_sizes=[3],
            stackwise_num_filters=[64, 64], stackwise_num_blocks=[1, 1],
            stackwise_num_strides=[1, 2], block_type="basic_block", image_shape=TINY_SHAPE),
        "hub:vgg": keras_hub.models.VGGBackbone(
            stackwise_num_repeats=[1, 1, 1], stackwise_num_filters=[4, 4, 8],
            image_shape=TINY_SHAPE),
    }
