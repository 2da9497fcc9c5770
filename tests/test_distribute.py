"""Training at scale: distributions (JAX), mixed precision (every backend),
float32 learngenes without a device layout, device reporting in `klg train`.

Multi-device tests run once, under the JAX backend, in a subprocess that
simulates two CPU devices (`XLA_FLAGS` must be set before JAX starts).
"""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
from click.testing import CliRunner
from conftest import TINY_BUILDERS, backend

import keras_learngene as klg
from keras_learngene import distribute, plugins, training
from keras_learngene._condense import resolve_form
from keras_learngene.cli import cli
from keras_learngene.forms import feature_model
from keras_learngene.methods import unit_similarities

HERE = os.path.dirname(os.path.abspath(__file__))


# ----------------------------------------------------------------------- settings
def test_precision_policy_validation():
    assert distribute.precision_policy(None) is None
    for name in distribute.PRECISIONS:
        assert distribute.precision_policy(name) == name
    with pytest.raises(ValueError, match="float32, mixed_float16, mixed_bfloat16"):
        distribute.precision_policy("float16")


def test_make_distribution_kinds():
    assert distribute.make_distribution(None) is None
    assert distribute.make_distribution("none") is None
    with pytest.raises(ValueError, match="Unknown distribution 'pipeline'"):
        distribute.make_distribution("pipeline")
    if backend() != "jax":
        for kind in distribute.DISTRIBUTIONS:
            with pytest.raises(ValueError, match=f"needs the JAX backend.*'{backend()}'"):
                distribute.make_distribution(kind)
        return
    dist = distribute.make_distribution("data_parallel")
    assert distribute.distribution_name(dist) == "data_parallel"
    assert dist.get_data_layout((32, 8, 8, 1)).axes == ("batch", None, None, None)
    assert distribute.data_replicas(dist) == len(keras.distribution.list_devices())
    model_parallel = distribute.make_distribution("model_parallel", devices=1)
    assert distribute.distribution_name(model_parallel) == "model_parallel"
    assert model_parallel.device_mesh.axis_names == ["batch", "model"]
    with pytest.raises(ValueError, match="devices=5"):
        distribute.make_distribution("data_parallel", devices=5)


def test_vit_layout_map_shards_only_transformer_blocks():
    mesh = keras.distribution.DeviceMesh((1, 1), ["batch", "model"], ["cpu:0"])
    layout_map = distribute.vit_layout_map(mesh)
    model = TINY_BUILDERS["vit"]()
    sharded = {}
    for v in model.weights:
        layout = layout_map[v.path]  # raises when a path matches two keys
        if layout is not None:
            assert len(layout.axes) == len(v.shape), v.path
            sharded[v.path.split("/", 1)[1]] = layout.axes
    assert sharded["mlp_in/kernel"] == (None, "model")
    assert sharded["mlp_out/kernel"] == ("model", None)
    assert sharded["attention/query/kernel"] == (None, "model", None)
    assert sharded["attention/attention_output/kernel"] == ("model", None, None)
    assert all(not path.startswith(("stem", "head")) for path in sharded)
    # descendants' blocks have other names and are sharded alike
    assert layout_map["inherited_transformer_block_2/mlp_in/kernel"].axes == (None, "model")


def test_describe_devices():
    where = distribute.describe_devices()
    assert where["backend"] == backend() and where["distribution"] is None
    assert len(where["devices"]) == 1 and where["devices"][0] in where["available"]
    assert all(":" in d for d in where["available"])


def test_scope_sets_and_restores_the_policy():
    before = keras.config.dtype_policy().name
    with distribute.scope(mixed_precision="mixed_bfloat16") as dist:
        assert dist is None and keras.config.dtype_policy().name == "mixed_bfloat16"
        layer = keras.layers.Dense(2)
    assert keras.config.dtype_policy().name == before
    assert layer.compute_dtype == "bfloat16" and layer.variable_dtype == "float32"
    with pytest.raises(ValueError, match="Unknown precision"):
        with distribute.scope(mixed_precision="half"):
            pass
    assert keras.config.dtype_policy().name == before


def test_train_refuses_a_model_built_in_another_precision(data):
    model = TINY_BUILDERS["vit"]()
    with pytest.raises(ValueError, match="distribute.scope\\(mixed_precision='mixed_bfloat16'"):
        training.train(model, *data, epochs=1, mixed_precision="mixed_bfloat16", verbose=0)
    with distribute.scope(mixed_precision="mixed_bfloat16"):
        copy = distribute.rebuild(model)  # a copy in the policy in force, same weights
    assert copy.get_layer("transformer_block_0").mlp_in.compute_dtype == "bfloat16"
    np.testing.assert_array_equal(copy.get_weights()[3], model.get_weights()[3])


# ----------------------------------------------------------------- mixed precision
@pytest.mark.parametrize("family, policy", [("vit", "mixed_bfloat16"), ("vgg", "mixed_float16")])
def test_mixed_precision_ancestry_learngene_descendant(family, policy, data, tmp_path):
    """Train an ancestry and a descendant in mixed precision; the learngene
    between them is float32 and loads outside the scope as float32."""
    compute = policy.split("_")[1]
    with distribute.scope(mixed_precision=policy):
        keras.utils.set_random_seed(0)
        ancestry = TINY_BUILDERS[family]()
        result = training.train(ancestry, *data, epochs=1, batch_size=32, augment=False,
                                verbose=0, mixed_precision=policy)
        assert np.isfinite(result["history"]["loss"]).all()
        assert result["precision"] == policy and result["backend"] == backend()
        assert ancestry.get_layer("conv_block_0" if family == "vgg" else
                                  "transformer_block_0").compute_dtype == compute
        assert {str(v.dtype) for v in ancestry.trainable_variables} == {"float32"}
        if policy == "mixed_float16":  # Keras' compile adds loss scaling
            assert isinstance(ancestry.optimizer, keras.optimizers.LossScaleOptimizer)
        # similarities are computed on float32 features
        anatomy = resolve_form(ancestry).split(ancestry)
        assert {t.dtype for t in feature_model(ancestry, anatomy.unit_outputs).outputs} == \
            {"float32"}
        S = unit_similarities(ancestry, anatomy.unit_outputs, ancestry, anatomy.unit_outputs,
                              data[0][:64], plugins.get_similarity("linear_cka"))
        assert np.isfinite(S).all() and np.allclose(np.diag(S), 1.0, atol=1e-3)
        learngene = klg.condense(ancestry, num_units=2, method="front")
        assert distribute.float32_problems(learngene) == []
        path = str(tmp_path / "lg.keras")
        learngene.save(path)
        descendant = klg.inherit(path, 1, num_classes=3)
        assert descendant.get_layer("fresh_0").compute_dtype == compute
        assert descendant.get_layer(klg.inherited_layers(descendant).popitem()[0]) \
            .compute_dtype == compute
        result = training.train(descendant, *data, epochs=1, batch_size=32, augment=False,
                                verbose=0, mixed_precision=policy)
        assert np.isfinite(result["history"]["loss"]).all()
    loaded = klg.Learngene.load(path)
    assert loaded.dtype_policy.name == "float32"
    assert distribute.float32_problems(loaded) == []
    assert {str(w.dtype) for w in loaded.weights} == {"float32"}


# ---------------------------------------------------------------------------- CLI
@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    """A tiny float32 ViT for the embedded 28x28 data, 2 classes."""
    keras.utils.set_random_seed(0)
    model = klg.models.VisionTransformer((28, 28, 1), 2, patch_size=7, num_layers=1,
                                         hidden_dim=8, num_heads=2, mlp_dim=16)
    path = str(tmp_path_factory.mktemp("dist") / "tiny.keras")
    model.save(path)
    return path


def _train_args(model_file, tmp_path, *extra):
    return ["train", "--model", model_file, "--classes", "0,1", "--shots", "2", "--epochs",
            "1", "--out", str(tmp_path / "t.keras"), *extra]


def test_cli_train_reports_backend_devices_and_precision(model_file, tmp_path):
    distribution = "data_parallel" if backend() == "jax" else "none"
    result = CliRunner().invoke(cli, _train_args(
        model_file, tmp_path, "--mixed-precision", "mixed_bfloat16", "--distribution",
        distribution, "--json"), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["precision"] == "mixed_bfloat16" and payload["backend"] == backend()
    assert payload["distribution"] == distribution and payload["devices"]
    line = (f"backend: {backend()}; devices: {', '.join(payload['devices'])}; "
            f"distribution: {distribution}; precision: mixed_bfloat16")
    assert line in result.stderr and "backend:" not in result.stdout
    saved = keras.saving.load_model(payload["out"])
    assert {str(w.dtype) for w in saved.weights} == {"float32"}


@pytest.mark.skipif(backend() == "jax", reason="JAX supports Keras' distribution API")
@pytest.mark.parametrize("kind", ["data_parallel", "model_parallel"])
def test_cli_distribution_off_jax_is_a_clean_error(model_file, tmp_path, kind):
    result = CliRunner().invoke(cli, _train_args(model_file, tmp_path, "--distribution", kind))
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert f"Error: distribution='{kind}' needs the JAX backend" in result.output
    assert f"backend is '{backend()}'" in result.output
    assert not (tmp_path / "t.keras").exists()


# --------------------------------------------------- JAX, two simulated CPU devices
MULTI_DEVICE = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
import conftest  # the suite's JAX compile settings
import jax, keras, numpy as np
import keras_learngene as klg
from keras_learngene import distribute, plugins, training

x, y = conftest.tiny_data(96)
out = {"devices": keras.distribution.list_devices()}
seen = []

class Spy(keras.layers.Layer):
    # records how the train step receives each batch
    def call(self, x):
        jax.debug.inspect_array_sharding(x, callback=lambda s: seen.append(s))
        return x

def build():
    keras.utils.set_random_seed(0)
    inputs = keras.Input(conftest.TINY_SHAPE)
    return keras.Model(inputs, conftest.TINY_BUILDERS["vit"]()(Spy()(inputs)))

def fit(model):
    training.train(model, x, y, epochs=2, batch_size=32, augment=False, seed=0, verbose=0)
    return model.get_weights()

one = fit(build())  # no distribution: one device
out["one_device_batch"] = str(seen[-1])
with distribute.scope("data_parallel") as dist:
    model = build()
    two = fit(model)
    layout = dist.get_data_layout((32,) + conftest.TINY_SHAPE)
    batch = keras.distribution.distribute_tensor(x[:32], layout)
out["max_weight_diff"] = max(float(np.abs(a - b).max()) for a, b in zip(one, two))
out["layout_axes"] = list(layout.axes)
out["batch_spec"] = str(batch.sharding.spec)
out["shard_shapes"] = sorted(list(s.data.shape) for s in batch.addressable_shards)
out["step_batch_spec"] = str(getattr(seen[-1], "spec", seen[-1]))
out["variable_devices"] = len(model.weights[0].value.sharding.device_set)

learngene = klg.condense(model, num_units=2, method="front")  # outside the scope
out["learngene_devices"] = sorted({len(w.value.sharding.device_set) for w in learngene.weights})
out["learngene_problems"] = distribute.float32_problems(learngene)

with distribute.scope("model_parallel"):
    sharded = conftest.TINY_BUILDERS["vit"]()
    logits = sharded.predict(x[:4], verbose=0)
kernel = sharded.get_layer("transformer_block_0").mlp_in.kernel.value
out["mp_kernel_spec"] = str(kernel.sharding.spec)
out["mp_shard_shapes"] = sorted(list(s.data.shape) for s in kernel.addressable_shards)
out["mp_logits"] = list(logits.shape)
print("RESULT " + json.dumps(out))
"""


@pytest.fixture(scope="module")
def two_devices():
    env = {**os.environ, "KERAS_BACKEND": "jax", "KLG_LOAD_PLUGINS": "",
           "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    proc = subprocess.run([sys.executable, "-c", MULTI_DEVICE, HERE], env=env,
                          capture_output=True, text=True, timeout=300)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stderr[-3000:]
    return json.loads(lines[-1][len("RESULT "):])


jax_only = pytest.mark.skipif(backend() != "jax", reason="runs once, under the JAX backend")


@jax_only
def test_data_parallel_matches_one_device(two_devices):
    assert two_devices["devices"] == ["cpu:0", "cpu:1"]
    assert two_devices["variable_devices"] == 2  # replicated on both
    assert two_devices["max_weight_diff"] < 1e-4


@jax_only
def test_data_parallel_shards_the_batch(two_devices):
    assert two_devices["layout_axes"][0] == "batch"
    assert "'batch'" in two_devices["batch_spec"]
    assert two_devices["shard_shapes"] == [[16, 8, 8, 1], [16, 8, 8, 1]]
    # what the compiled train step received: split over the batch axis
    assert "'batch'" in two_devices["step_batch_spec"]
    assert "replicated" in two_devices["one_device_batch"]


@jax_only
def test_learngene_of_a_distributed_model_has_no_layout(two_devices):
    assert two_devices["learngene_devices"] == [1]
    assert two_devices["learngene_problems"] == []


@jax_only
def test_model_parallel_shards_vit_kernels(two_devices):
    assert "'model'" in two_devices["mp_kernel_spec"]
    assert two_devices["mp_shard_shapes"] == [[8, 8], [8, 8]]  # (8, 16) split in columns
    assert two_devices["mp_logits"] == [4, 3]
