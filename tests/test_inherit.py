"""Inheriting: descendants for every strategy and form, provenance, bad input."""

import keras
import numpy as np
import pytest
from conftest import TINY_BUILDERS, body_units, train_briefly

import keras_learngene as klg
from keras_learngene import plugins
from keras_learngene.strategies import Strategy

# generic strategies (dedicated ones, like TLEG's, are tested with their method)
STRATEGIES = [n for n in plugins.registry("strategies").names()
              if plugins.get_strategy(n).generic]


CASES = ["vit/back", "vgg/front", "vgg/back", "resnet/front", "resnet/back"]


@pytest.fixture(scope="module")
def learngenes(data):
    """Learngenes of every tiny ancestry family: the first two units, and the
    last two (which, in the CNNs, sit in another stage than the stem)."""
    out = {}
    for family, build in sorted(TINY_BUILDERS.items()):
        keras.utils.set_random_seed(0)
        ancestry = train_briefly(build(), *data, epochs=1)
        out[f"{family}/ancestry"] = ancestry
        for method in ("front", "back"):
            out[f"{family}/{method}"] = klg.condense(ancestry, num_units=2, method=method)
        out[family] = out[f"{family}/back"]
    return out


def _weights(layer):
    return [np.asarray(w) for w in layer.get_weights()]


def _changes_width(unit):
    return unit.input.shape[-1] != unit.output.shape[-1]


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("case", CASES)
def test_descendant_for_every_strategy(learngenes, case, strategy, data, tmp_path):
    learngene = learngenes[case]
    x, y = data
    if strategy == "expand" and any(map(_changes_width, learngene.learngene_units)):
        # a copy of a unit that widens the channels cannot take that unit's output
        with pytest.raises(ValueError, match="cannot take an input|puts learngene unit"):
            klg.inherit(learngene, 3, num_classes=4, strategy=strategy, seed=1)
        return
    descendant = klg.inherit(learngene, 3, num_classes=4, strategy=strategy, seed=1)
    assert descendant.output_shape == (None, 4)
    inherited = klg.inherited_layers(descendant)
    # each learngene unit is inherited exactly once, with identical weights
    sources = {unit.name: unit for unit in learngene.learngene_units}
    direct = {k: v for k, v in inherited.items() if k.startswith("inherited_") and v != "stem"}
    assert sorted(direct.values()) == sorted(sources)
    for layer_name, source in inherited.items():
        source_layer = learngene.stem_layer if source == "stem" else sources[source]
        for a, b in zip(_weights(descendant.get_layer(layer_name)), _weights(source_layer)):
            np.testing.assert_array_equal(a, b)
    # fresh units are new: none of their weight tensors equals any ancestry tensor
    ancestry_bytes = {w.tobytes() for w in learngene.get_weights() if w.size > 1 and w.std() > 0}
    fresh = [layer for layer in descendant.layers if layer.name.startswith("fresh_")]
    new_units = sum(1 for name in inherited if name.startswith("copy")) + len(fresh)
    assert new_units == 3
    bridges = [layer.name for layer in descendant.layers if layer.name.startswith("bridge_")]
    assert len(bridges) == len(learngene.provenance["bridges_before"])
    for layer in fresh:
        assert not any(w.tobytes() in ancestry_bytes for w in _weights(layer))
    # training changes the weights, and never the learngene's
    before = [w.copy() for w in learngene.get_weights()]
    descendant.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    descendant.fit(x[:32], y[:32] % 4, epochs=1, verbose=0)
    for a, b in zip(before, learngene.get_weights()):
        np.testing.assert_array_equal(a, b)
    # .keras round trip, provenance (layer names) included
    path = str(tmp_path / "descendant.keras")
    descendant.save(path)
    loaded = keras.saving.load_model(path)
    assert klg.inherited_layers(loaded) == inherited
    np.testing.assert_allclose(loaded.predict(x[:8], verbose=0),
                               descendant.predict(x[:8], verbose=0), atol=1e-5)


def test_n_layers_zero_is_learngene_plus_head(learngenes):
    learngene = learngenes["vit"]
    descendant = klg.inherit(learngene, 0, num_classes=2)
    body = [layer.name for layer in descendant.layers if not layer.name.startswith("head_")]
    assert body == ["images", "inherited_stem"] + [
        f"inherited_{u.name}" for u in learngene.learngene_units]


def test_sizes_and_seeds(learngenes):
    learngene = learngenes["vit"]
    sizes = [klg.inherit(learngene, n, num_classes=3).count_params() for n in (0, 2, 4)]
    assert sizes[0] < sizes[1] < sizes[2]
    assert sizes[2] - sizes[1] == sizes[1] - sizes[0]  # identical fresh transformer blocks
    a = klg.inherit(learngene, 1, num_classes=3, seed=5).get_layer("fresh_0").get_weights()
    b = klg.inherit(learngene, 1, num_classes=3, seed=5).get_layer("fresh_0").get_weights()
    c = klg.inherit(learngene, 1, num_classes=3, seed=6).get_layer("fresh_0").get_weights()
    assert all(np.array_equal(u, v) for u, v in zip(a, b))
    assert not all(np.array_equal(u, v) for u, v in zip(a, c))


def test_freeze_learngene(learngenes):
    descendant = klg.inherit(learngenes["vgg"], 1, num_classes=3, freeze_learngene=True)
    for name in klg.inherited_layers(descendant):
        assert not descendant.get_layer(name).trainable
    assert descendant.get_layer("fresh_0").trainable


def test_vit_resizes_position_embedding(learngenes):
    learngene = learngenes["vit"]
    descendant = klg.inherit(learngene, 1, num_classes=3, input_shape=(16, 16, 1))
    stem = descendant.get_layer("inherited_stem")
    assert tuple(stem.position_embedding.shape) == (1, 16 + 1, 8)  # 4x4 patches + class token
    # the class token's position is kept, the grid is interpolated from 2x2 to 4x4
    old = np.asarray(learngene.stem_layer.position_embedding)
    new = np.asarray(stem.position_embedding)
    np.testing.assert_array_equal(new[0, 0], old[0, 0])
    assert new[0, 1:].mean() == pytest.approx(old[0, 1:].mean(), abs=0.05)
    assert descendant.predict(np.zeros((2, 16, 16, 1)), verbose=0).shape == (2, 3)


def test_cnn_back_units_get_a_fresh_bridge(learngenes):
    # the last tiny VGG units take another stage's shape (4x4) than the stem gives (8x8)
    learngene = learngenes["vgg/back"]
    assert learngene.provenance["bridges_before"] == [learngene.learngene_units[0].name]
    descendant = klg.inherit(learngene, 1, num_classes=3, strategy="prepend")
    names = [layer.name for layer in descendant.layers]
    assert names.index("fresh_0") < names.index("bridge_0") < names.index(
        "inherited_" + learngene.learngene_units[0].name)
    assert "bridge_0" not in klg.inherited_layers(descendant)


def test_ancestry_without_data_is_refused(data):
    ancestry = TINY_BUILDERS["vit"]()
    with pytest.raises(ValueError, match="not a learngene.*condense"):
        klg.inherit(ancestry, 1, num_classes=3)


def test_ancestry_with_data_is_condensed(data):
    ancestry = train_briefly(TINY_BUILDERS["vit"](), *data, epochs=1)
    descendant = klg.inherit(ancestry, 1, num_classes=3, data=data,
                             condense_kwargs={"num_units": 2, "pseudo_epochs": 1})
    assert len([n for n in klg.inherited_layers(descendant) if n != "inherited_stem"]) == 2


def test_inherit_from_path(learngenes, tmp_path):
    path = str(tmp_path / "lg.keras")
    learngenes["resnet"].save(path)
    descendant = klg.inherit(path, 2, num_classes=5)
    assert descendant.output_shape == (None, 5)


# ------------------------------------------------ conformance: the descendant's size

def _learngene_for(strategy, learngenes, data):
    """A learngene `strategy` accepts: any (front-2 of the tiny ViT) for a generic
    strategy; else one condensed by the method that asks for it."""
    if plugins.get_strategy(strategy).generic:
        return learngenes["vit/front"]
    method = next(plugins.get_method(m) for m in plugins.registry("methods").names()
                  if plugins.get_method(m).strategy == strategy)
    return klg.condense(learngenes["vit/ancestry"], data, num_units=2, method=method.name,
                        **method.quick_options)


@pytest.mark.parametrize("strategy", plugins.registry("strategies").names())
def test_depth_and_n_layers_mean_the_same_for_every_strategy(strategy, learngenes, data):
    """`depth=d` gives exactly d units; `n_layers=n` gives n new units (the units that
    are not a learngene unit taken as it is), whatever the strategy."""
    learngene = _learngene_for(strategy, learngenes, data)
    chosen = plugins.get_strategy(strategy)
    k = len(learngene.learngene_units)
    for depth in (k + 1, k + 3):
        inherited, new = body_units(klg.inherit(learngene, depth=depth, num_classes=3,
                                                strategy=strategy))
        assert len(inherited) + len(new) == depth, (strategy, depth, inherited, new)
        assert len(chosen.layout_at_depth(k, depth)) == depth
        assert chosen.new_units(k, depth) == len(new)
    for n in (1, 2):
        inherited, new = body_units(klg.inherit(learngene, n, num_classes=3,
                                                strategy=strategy))
        assert len(new) == n, (strategy, n, inherited, new)


@pytest.mark.once
def test_exactly_one_size_is_given_before_any_work():
    def refused(**kwargs):  # no learngene is ever loaded: the size is checked first
        with pytest.raises(ValueError) as info:
            klg.inherit("no/such/learngene.keras", num_classes=3, **kwargs)
        return str(info.value)

    for message in (refused(), refused(n_layers=2, depth=5)):
        assert "n_layers (its new units" in message and "depth= (all its units" in message
    assert "got both" in refused(n_layers=2, depth=5)
    assert "depth=0: the number of all the descendant's units" in refused(depth=0)
    assert "depth=2.5" in refused(depth=2.5)
    assert "n_layers=-1: the number of new units" in refused(n_layers=-1)


def test_a_depth_the_strategy_cannot_build_is_refused_before_work(learngenes, monkeypatch):
    learngene = learngenes["vit"]  # 2 units, each kept as it is by stack
    monkeypatch.setattr(Strategy, "build", lambda *a, **k: pytest.fail("built before the check"))
    with pytest.raises(ValueError, match=r"keeps each of the learngene's 2 units and adds new "
                                         r"ones, so depth=1 \(all units\) must be at least 2"):
        klg.inherit(learngene, depth=1, num_classes=3)


def test_positional_n_layers_keeps_the_cards_meaning(learngenes):
    learngene = learngenes["vit"]
    positional = klg.inherit(learngene, 2, num_classes=3)
    assert [layer.name for layer in positional.layers] == [
        layer.name for layer in klg.inherit(learngene, depth=4, num_classes=3).layers]
    assert body_units(positional)[1] == ["fresh_0", "fresh_1"]


@pytest.mark.parametrize("kwargs, error, message", [
    ({"n_layers": -1}, ValueError, "n_layers=-1"),
    ({"n_layers": 1000}, ValueError, "from 0 to 64"),
    ({"n_layers": 1.5}, ValueError, "n_layers=1.5"),
    ({"n_layers": None, "depth": 0}, ValueError, "depth=0"),
    ({"depth": 4}, ValueError, "got both"),
    ({"strategy": "stak"}, ValueError, "Did you mean 'stack'"),
    ({"num_classes": 0}, ValueError, "num_classes=0"),
    ({"num_classes": 1}, ValueError, "num_classes=1 must be an int of at least 2: a head of one "
     "output cannot learn"),
    ({"input_shape": (8, 8, 3)}, ValueError, "takes 1 channels"),
    ({"input_shape": (8, 8)}, ValueError, "has rank 2"),
])
def test_inherit_bad_input(learngenes, kwargs, error, message):
    kwargs = {"n_layers": 1, "num_classes": 3, **kwargs}
    with pytest.raises(error, match=message):
        klg.inherit(learngenes["vit"], **kwargs)


