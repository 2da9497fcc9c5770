"""Training at scale: devices, data / model parallelism and mixed precision.

Everything here maps onto Keras' own APIs, nothing is home-made:

- distributions are `keras.distribution.DataParallel` and
  `keras.distribution.ModelParallel` (with `vit_layout_map` for the library's
  ViT). Keras 3 implements its distribution API on the JAX backend only, so
  asking for one on TensorFlow or PyTorch raises a `ValueError` that says so;
- mixed precision is a Keras dtype policy (`"mixed_float16"`,
  `"mixed_bfloat16"`); `Model.compile` wraps the optimizer in a
  `keras.optimizers.LossScaleOptimizer` under `"mixed_float16"`.

Keras lays a variable out, and gives a layer its dtype policy, when it is
*created*, so a model must be built inside the setting it trains under:

```python
with keras_learngene.distribute.scope("data_parallel", mixed_precision="mixed_bfloat16"):
    model = keras_learngene.models.build_preset("vit_tiny", num_classes=10)
    keras_learngene.training.train(model, x, y, epochs=5)
learngene = keras_learngene.condense(model, (x, y))  # float32, no device layout
```

Learngenes are always float32 and carry no device layout (`make_learngene`
copies units under `local_scope()`), so a learngene condensed from a model
trained on eight GPUs in bfloat16 loads on a laptop.
"""

import contextlib

import keras

__all__ = [
    "DISTRIBUTIONS",
    "PRECISIONS",
    "active_distribution",
    "check_model",
    "data_replicas",
    "describe_devices",
    "distribution_name",
    "float32_problems",
    "list_devices",
    "local_scope",
    "make_distribution",
    "precision_policy",
    "rebuild",
    "scope",
    "vit_layout_map",
]

DISTRIBUTIONS = ("data_parallel", "model_parallel")
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
# Dtype policies a copy may trade for the one in force (not quantized ones).
FLOAT_POLICIES = ("float16", "bfloat16", "float32", "float64", "mixed_float16",
                  "mixed_bfloat16")
BATCH_AXIS, MODEL_AXIS = "batch", "model"


# --------------------------------------------------------------------------- precision
def precision_policy(name):
    """Validates a precision setting.

    Args:
        name: `None` (keep the dtype policy in force), `"float32"`,
            `"mixed_float16"` or `"mixed_bfloat16"`.

    Returns:
        The policy name, or `None`.

    Raises:
        ValueError: for any other value, listing the valid ones.
    """
    if name is None or name in PRECISIONS:
        return name
    raise ValueError(
        f"Unknown precision {name!r}; one of {', '.join(PRECISIONS)} (or None to keep the "
        f"dtype policy in force, now {keras.config.dtype_policy().name!r})."
    )


# ------------------------------------------------------------------------ distribution
def _require_jax(what):
    backend = keras.backend.backend()
    if backend != "jax":
        raise ValueError(
            f"{what} needs the JAX backend: Keras {keras.__version__} implements its "
            f"distribution API (keras.distribution) on JAX only, and the backend is "
            f"{backend!r}. Set KERAS_BACKEND=jax, or train without a distribution."
        )


def list_devices():
    """The devices of the default type (accelerators when there are any, else
    CPUs) as `"type:id"` strings, on every backend."""
    backend = keras.backend.backend()
    if backend in ("jax", "tensorflow"):
        return list(keras.distribution.list_devices())
    if backend == "torch":  # Keras has no device listing for torch
        import torch

        if torch.cuda.is_available():
            return [f"cuda:{i}" for i in range(torch.cuda.device_count())]
        return ["cpu:0"]
    return ["cpu:0"]


def _select_devices(devices):
    available = list_devices()
    if devices is None:
        return available
    if isinstance(devices, str):
        devices = int(devices) if devices.isdigit() else [
            d.strip() for d in devices.split(",") if d.strip()]
    if isinstance(devices, int) and not isinstance(devices, bool):
        if not 1 <= devices <= len(available):
            raise ValueError(
                f"devices={devices}: there are {len(available)} devices "
                f"({', '.join(available)}); ask for 1 to {len(available)}."
            )
        return available[:devices]
    devices = [str(d) for d in devices]
    unknown = [d for d in devices if d not in available]
    if unknown or not devices or len(set(devices)) != len(devices):
        raise ValueError(
            f"devices={devices!r}: name distinct devices among {', '.join(available)}."
        )
    return devices


def make_distribution(kind=None, devices=None, model_axis=None):
    """A Keras distribution for `kind`.

    Args:
        kind: `None` or `"none"` (no distribution), `"data_parallel"`
            (`keras.distribution.DataParallel`: variables replicated, each
            batch split over the devices, gradients averaged by XLA), or
            `"model_parallel"` (`keras.distribution.ModelParallel` on a
            `("batch", "model")` mesh: the library ViT's attention and MLP
            kernels are split over the `"model"` axis by `vit_layout_map`,
            every other variable is replicated, batches are split over
            `"batch"`). A Keras distribution object is returned as is.
        devices: the devices to use: `None` (all of the default type), a
            count (the first N) or a list / comma-separated string of names
            like `"gpu:0,gpu:1"` (see `list_devices()`).
        model_axis: size of the `"model"` mesh axis for `"model_parallel"`
            (default: 2 when the device count is even, else 1). It must divide
            the device count, the number of attention heads and the MLP width.

    Returns:
        A `keras.distribution.DataParallel` or `ModelParallel`, or `None`.

    Raises:
        ValueError: an unknown kind, unknown devices, or a backend other than
            JAX (the only one Keras' distribution API supports).

    Example:
    ```python
    distribution = keras_learngene.distribute.make_distribution("data_parallel")
    with keras_learngene.distribute.scope(distribution):
        model = keras_learngene.models.build_preset("vit_tiny")
    ```
    """
    if _is_distribution(kind):
        _require_jax(f"The distribution {type(kind).__name__}")
        return kind
    if kind is None or kind == "none":
        if devices is not None:
            _select_devices(devices)  # validate; one device is chosen with `keras.device`
        return None
    if kind not in DISTRIBUTIONS:
        raise ValueError(
            f"Unknown distribution {kind!r}; one of none, {', '.join(DISTRIBUTIONS)}."
        )
    _require_jax(f"distribution={kind!r}")
    devices = _select_devices(devices)
    if kind == "data_parallel":
        return keras.distribution.DataParallel(devices=devices)
    n = len(devices)
    model_axis = model_axis or (2 if n % 2 == 0 else 1)
    if n % model_axis:
        raise ValueError(
            f"model_axis={model_axis} does not divide the {n} devices; pick a divisor of {n}."
        )
    mesh = keras.distribution.DeviceMesh((n // model_axis, model_axis),
                                         [BATCH_AXIS, MODEL_AXIS], devices)
    return keras.distribution.ModelParallel(layout_map=vit_layout_map(mesh),
                                            batch_dim_name=BATCH_AXIS)


def _is_distribution(obj):
    # Keras exports DataParallel and ModelParallel but not their base class.
    return hasattr(obj, "get_variable_layout") and hasattr(obj, "device_mesh")


def vit_layout_map(device_mesh):
    """A `keras.distribution.LayoutMap` that splits the library's
    `TransformerBlock`s over the mesh's `"model"` axis, Megatron-style:
    attention heads (query/key/value kernels and biases by head, the output
    projection by head) and the MLP (first kernel by column, second by row).
    Everything else (stem, norms, head) is replicated. Keys are regexes on
    variable paths, so they match the blocks of ancestries, pseudo
    descendants and descendants (`inherited_*`, `fresh_*`) alike.

    Args:
        device_mesh: a `keras.distribution.DeviceMesh` with a `"model"` axis.
    """
    layout_map = keras.distribution.LayoutMap(device_mesh)
    layout_map[r".*/attention/(query|key|value)/kernel"] = (None, MODEL_AXIS, None)
    layout_map[r".*/attention/(query|key|value)/bias"] = (MODEL_AXIS, None)
    layout_map[r".*/attention/attention_output/kernel"] = (MODEL_AXIS, None, None)
    layout_map[r".*/mlp_in/kernel"] = (None, MODEL_AXIS)
    layout_map[r".*/mlp_in/bias"] = (MODEL_AXIS,)
    layout_map[r".*/mlp_out/kernel"] = (MODEL_AXIS, None)
    return layout_map


def distribution_name(distribution):
    """`"data_parallel"`, `"model_parallel"`, the class name of another
    distribution, or `None`."""
    if distribution is None:
        return None
    return {keras.distribution.DataParallel: "data_parallel",
            keras.distribution.ModelParallel: "model_parallel"}.get(
        type(distribution), type(distribution).__name__)


def data_replicas(distribution):
    """How many ways each batch is split: the size of the distribution's
    batch axis (1 without a distribution). Batch sizes must be multiples."""
    if distribution is None:
        return 1
    mesh = distribution.device_mesh
    return int(mesh.shape[list(mesh.axis_names).index(distribution.batch_dim_name)])


def describe_devices(distribution=None, devices=None):
    """Which backend and devices a model trains on.

    Args:
        distribution: the distribution in use (default: none).
        devices: the devices asked for, as for `scope` (without a
            distribution: the one device entered with `keras.device`).

    Returns:
        `{"backend", "devices", "distribution", "available"}`: the devices
        of the distribution's mesh, else the one device (the first of the
        default type, where Keras places work without a distribution);
        `"available"` lists every device of that type.
    """
    available = list_devices()
    if distribution is not None:
        used = [str(d) for d in distribution.device_mesh.devices.flatten()]
    else:
        used = [_single_device(None, devices) or available[0]]
    return {"backend": keras.backend.backend(), "devices": used,
            "distribution": distribution_name(distribution), "available": available}


# ------------------------------------------------------------------------------ scopes
@contextlib.contextmanager
def scope(distribution=None, mixed_precision=None, devices=None):
    """Builds and trains inside a distribution and a precision policy.

    Build the model *inside* the scope: Keras lays variables out on the
    devices and picks a layer's compute dtype when the variable or layer is
    created. Both settings are restored on exit.

    Args:
        distribution: `None`, a kind (see `make_distribution`) or a Keras
            distribution object.
        mixed_precision: `None` (keep the dtype policy in force), `"float32"`,
            `"mixed_float16"` or `"mixed_bfloat16"`.
        devices: devices for `make_distribution`; without a distribution, one
            device name (e.g. `"gpu:1"`), entered with `keras.device`.

    Yields:
        The Keras distribution in force, or `None`.

    Raises:
        ValueError: see `make_distribution` and `precision_policy`.

    Example:
    ```python
    with keras_learngene.distribute.scope("data_parallel", "mixed_bfloat16") as dist:
        model = keras_learngene.models.build_preset("vit_tiny")
        keras_learngene.training.train(model, x, y)
    ```
    """
    policy = precision_policy(mixed_precision)
    distribution = make_distribution(distribution, devices)
    device = _single_device(distribution, devices)
    with contextlib.ExitStack() as stack:
        if policy is not None:
            stack.enter_context(_policy_scope(policy))
        if distribution is not None:
            stack.enter_context(distribution.scope())
        if device is not None:
            stack.enter_context(keras.device(_keras_device_name(device)))
        yield distribution


def _single_device(distribution, devices):
    if distribution is not None or devices is None:
        return None
    chosen = _select_devices(devices)
    if len(chosen) != 1:
        raise ValueError(
            f"devices={devices!r} names {len(chosen)} devices; several devices need a "
            "distribution (data_parallel on JAX)."
        )
    return chosen[0]


def _keras_device_name(device):
    # torch copies a parameter moved to "cpu:0" (not "cpu") into a plain tensor,
    # which Keras' torch layers then fail to track.
    if keras.backend.backend() == "torch" and device.startswith("cpu"):
        return "cpu"
    return device


@contextlib.contextmanager
def _policy_scope(policy):
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


@contextlib.contextmanager
def local_scope():
    """float32 and no distribution, whatever is in force outside: how
    learngenes are made, so they load anywhere."""
    previous = keras.distribution.distribution() if _has_distribution_api() else None
    with _policy_scope("float32"):
        if previous is None:
            yield
            return
        keras.distribution.set_distribution(None)
        try:
            yield
        finally:
            keras.distribution.set_distribution(previous)


def _has_distribution_api():
    return keras.backend.backend() == "jax"


def active_distribution():
    """The Keras distribution in force (JAX), or `None`."""
    return keras.distribution.distribution() if _has_distribution_api() else None


# ------------------------------------------------------------------------------ checks
def check_model(model, distribution=None, mixed_precision=None):
    """Raises a `ValueError` when `model` was not built under `distribution`
    and `mixed_precision` (so training it there would fail, or silently run
    in another precision).

    Args:
        model: a built `keras.Model`.
        distribution: a Keras distribution or `None` (no check).
        mixed_precision: a policy name or `None` (no check).
    """
    if mixed_precision is not None:
        wrong = _policy_problems(model, mixed_precision, include_self=True)
        if wrong:
            raise ValueError(
                f"Model {model.name!r} was not built with the dtype policy "
                f"{mixed_precision!r} ({', '.join(wrong[:3])}"
                f"{', ...' if len(wrong) > 3 else ''}); build it inside "
                f"`keras_learngene.distribute.scope(mixed_precision={mixed_precision!r})`, or "
                "copy it there with `keras_learngene.distribute.rebuild(model)`."
            )
    if distribution is None:
        return
    wanted = {str(d) for d in distribution.device_mesh.devices.flatten()}
    for variable in model.variables:
        sharding = getattr(variable.value, "sharding", None)
        placed = {f"{d.platform}:{d.id}" for d in getattr(sharding, "device_set", ())}
        if placed != wanted:
            raise ValueError(
                f"Variable {variable.path!r} of model {model.name!r} lives on "
                f"{sorted(placed)}, not on the distribution's devices {sorted(wanted)}: "
                "build the model inside `keras_learngene.distribute.scope(distribution)`, "
                "or copy it there with `keras_learngene.distribute.rebuild(model)`."
            )


def float32_problems(model):
    """Paths of `model`'s non-float32 weights and names of its layers whose
    dtype policy is not float32 (empty for a clean learngene)."""
    problems = [w.path for w in model.weights if str(w.dtype) != "float32"]
    return problems + _policy_problems(model, "float32")


def _policy_problems(model, expected, include_self=False):
    """`"layer (policy)"` for every layer of `model` (recursively through
    Functional sub-models) whose float dtype policy is not `expected`."""
    problems, layers = [], list(getattr(model, "layers", []))
    if include_self:
        layers.append(model)
    while layers:
        layer = layers.pop()
        if layer is not model:
            layers.extend(getattr(layer, "layers", []))
        if isinstance(layer, keras.layers.InputLayer):
            continue
        name = getattr(getattr(layer, "dtype_policy", None), "name", expected)
        if name != expected and name in FLOAT_POLICIES:
            problems.append(f"{layer.name} ({name})")
    return problems


# ----------------------------------------------------------------------------- rebuild
def rebuild(model):
    """`model` in the dtype policy and the distribution in force (inside
    `scope`): `model` itself when it was built there, else a copy with its
    weights whose config has every float dtype policy replaced by the one in
    force. How a model saved in float32, or built outside a distribution, is
    brought into one.

    Example:
    ```python
    with keras_learngene.distribute.scope("data_parallel", "mixed_bfloat16"):
        model = keras_learngene.distribute.rebuild(keras.saving.load_model("d.keras"))
        keras_learngene.training.train(model, x, y)
    ```
    """
    try:
        check_model(model, active_distribution(), keras.config.dtype_policy().name)
        return model
    except ValueError:
        pass
    config = keras.saving.serialize_keras_object(model)
    config.pop("compile_config", None)
    new = keras.saving.deserialize_keras_object(with_float_policy(config))
    new.set_weights(model.get_weights())
    return new


def with_float_policy(config, policy=None):
    """A Keras config (of a layer or a model, nested configs included) with
    every float dtype policy replaced by `policy` (default: the one in
    force); non-float policies (e.g. quantized ones) are kept. The one place
    the library rewrites precision: `rebuild` and the forms' `clone_layer`
    both use it."""
    policy = policy or keras.config.dtype_policy().name
    if policy not in FLOAT_POLICIES:
        return config
    if isinstance(config, list):
        return [with_float_policy(item, policy) for item in config]
    if not isinstance(config, dict):
        return config
    if config.get("class_name") == "DTypePolicy" and \
            config.get("config", {}).get("name") in FLOAT_POLICIES:
        return {**config, "config": {**config["config"], "name": policy}}
    return {key: with_float_policy(value, policy) for key, value in config.items()}
