"""keras-cv's role: its backbones (built without pretrained weights) as
ancestries, cut by the generic Functional form. Runs when the optional
`keras-cv` extra is installed (it needs TensorFlow, whatever the backend)."""

import warnings

import keras
import numpy as np
import pytest

keras_cv = pytest.importorskip("keras_cv")

import keras_learngene as klg  # noqa: E402


def test_keras_cv_backbone_as_ancestry(tmp_path):
    backbone = keras_cv.models.ResNetV2Backbone(
        stackwise_filters=[8, 16], stackwise_blocks=[2, 2], stackwise_strides=[1, 2],
        input_shape=(16, 16, 3), include_rescaling=False,
    )
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.GlobalAveragePooling2D()(backbone(inputs))
    ancestry = keras.Model(inputs, keras.layers.Dense(3)(x))
    x_probe = np.random.default_rng(0).random((40, 16, 16, 3), dtype=np.float32)
    y_probe = np.arange(40) % 3
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # untrained: weights=None
        learngene = klg.condense(ancestry, (x_probe, y_probe), num_units=2, method="front")
    assert learngene.form == "functional"
    assert learngene.provenance["source_names"] == ["v2_stack_0_block1_unit",
                                                    "v2_stack_0_block2_unit"]
    path = str(tmp_path / "lg.keras")
    learngene.save(path)
    descendant = klg.inherit(path, 1, num_classes=5)
    assert descendant.output_shape == (None, 5)
    descendant.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    loss = descendant.train_on_batch(x_probe[:4], y_probe[:4])
    assert np.isfinite(float(np.asarray(loss).ravel()[0]))
