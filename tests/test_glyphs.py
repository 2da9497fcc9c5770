"""Glyphs rendered from the system fonts, N-way K-shot episodes and the CIFAR-FS loader.

Pure numpy (and Pillow): the same on every backend. The glyph tests render a small subset
(six scripts, a few common families, 12 classes per script) into a temporary cache.
"""

import pickle
import tarfile

import numpy as np
import pytest

from keras_learngene import datasets
from keras_learngene.datasets import _cifar, _glyphs

APT = "sudo apt-get install fonts-noto-core fonts-dejavu-core"
SMALL = dict(
    scripts=("latin", "greek", "cyrillic", "armenian", "georgian", "hebrew"),
    families=(
        "DejaVu Sans", "DejaVu Serif", "DejaVu Sans Mono", "Noto Sans", "Noto Serif",
        "Noto Sans Armenian", "Noto Serif Armenian", "Noto Sans Georgian",
        "Noto Serif Georgian", "Noto Sans Hebrew", "Noto Serif Hebrew", "Liberation Sans",
        "Liberation Serif", "FreeSans", "FreeSerif",
    ),
    max_classes_per_script=12,
    max_variants=4,
    min_train=8,
    min_test=4,
)  # fmt: skip


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("klg-glyphs")


@pytest.fixture(scope="module")
def glyphs(cache_dir):
    pytest.importorskip("PIL", reason="the glyphs need Pillow: pip install pillow")
    try:
        return datasets.load_glyphs(cache_dir=cache_dir, **SMALL)
    except datasets.GlyphsNotFoundError as error:
        pytest.skip(f"too few fonts for the glyphs ({APT}): {error}")


def test_images_look_like_fashion_mnist(glyphs):
    assert glyphs.x_train.dtype == np.uint8 and glyphs.x_train.shape[1:] == (28, 28)
    assert glyphs.x_test.shape[1:] == (28, 28)
    assert len(glyphs.x_train) == len(glyphs.y_train) == len(glyphs.font_train)
    assert set(np.unique(glyphs.y_train)) == set(range(glyphs.num_classes))
    assert set(np.unique(glyphs.y_test)) == set(range(glyphs.num_classes))
    # Centred ink, a 2-pixel margin less the 1-pixel jitter; every image has ink.
    images = np.concatenate([glyphs.x_train, glyphs.x_test])
    assert images.reshape(len(images), -1).max(axis=1).min() > 0
    assert images[:, :1].max() == 0 and images[:, :, :1].max() == 0  # jitter shifts 1
    assert len(glyphs.class_names) == len(set(glyphs.codepoints)) == glyphs.num_classes
    assert glyphs.class_names[glyphs.codepoints.index(ord("A"))].startswith("U+0041 LATIN")


def test_deterministic_and_fingerprinted(glyphs):
    arrays, fingerprint = datasets.render_glyphs(**SMALL)
    assert fingerprint == glyphs.fingerprint
    test = arrays["is_test"]
    np.testing.assert_array_equal(arrays["images"][~test], glyphs.x_train)
    np.testing.assert_array_equal(arrays["images"][test], glyphs.x_test)
    np.testing.assert_array_equal(arrays["labels"][test], glyphs.y_test)
    # Any parameter is part of the fingerprint.
    _, other = datasets.render_glyphs(**{**SMALL, "max_classes_per_script": 11})
    assert other != fingerprint


def test_second_load_reads_the_cache(glyphs, cache_dir, monkeypatch):
    assert glyphs.cache_file == cache_dir / f"glyphs-{glyphs.fingerprint}.npz"
    assert glyphs.cache_file.is_file()
    assert not list(cache_dir.glob("*.tmp"))  # written through a temporary file

    def no_render(*args, **kwargs):
        raise AssertionError("rendered although the cache holds the arrays")

    monkeypatch.setattr(_glyphs, "render_glyphs", no_render)
    _glyphs._MEMORY.clear()
    again = datasets.load_glyphs(cache_dir=cache_dir, **SMALL)
    np.testing.assert_array_equal(again.x_test, glyphs.x_test)
    assert again.fonts == glyphs.fonts and again.class_names == glyphs.class_names


def test_train_and_test_fonts_are_disjoint(glyphs):
    train = {glyphs.font_families[f] for f in np.unique(glyphs.font_train)}
    test = {glyphs.font_families[f] for f in np.unique(glyphs.font_test)}
    assert train and test and not train & test
    assert test <= set(glyphs.test_families)
    assert not {glyphs.fonts[f] for f in np.unique(glyphs.font_train)} & {
        glyphs.fonts[f] for f in np.unique(glyphs.font_test)
    }


def test_no_image_for_a_character_a_font_lacks(glyphs):
    faces = {f.name: f for f in datasets.find_fonts()}
    pytest.importorskip("fontTools")
    for split_fonts, split_labels in (
        (glyphs.font_train, glyphs.y_train),
        (glyphs.font_test, glyphs.y_test),
    ):
        for f in np.unique(split_fonts):
            cmap = _glyphs._cmap(faces[glyphs.fonts[f]])
            drawn = {glyphs.codepoints[c] for c in np.unique(split_labels[split_fonts == f])}
            assert drawn <= cmap, glyphs.fonts[f]


def test_tofu_is_rejected_without_a_cmap(glyphs, monkeypatch):
    faces = [f for f in datasets.find_fonts() if f.name in glyphs.fonts]
    latin_only = [f for f in faces if f.family in ("DejaVu Sans Mono", "Noto Serif")]
    face = (latin_only or faces)[0]
    ethiopic = _glyphs._SCRIPTS_BY_NAME["ethiopic"]  # none of these faces draws Ethiopic
    latin = _glyphs._SCRIPTS_BY_NAME["latin"]
    monkeypatch.setattr(_glyphs, "_cmap", lambda face: None)  # as without fontTools
    cover = _glyphs._coverage([face], [latin, ethiopic])
    renders = _glyphs._render_clean([face], cover, [latin, ethiopic], margin=2)
    drawn = {c for _, c in renders}
    assert ord("A") in drawn
    assert not drawn & set(ethiopic.codepoints)
    font = _glyphs._open(face)
    missing = _glyphs._ink(font, _glyphs._MISSING)
    assert missing is None or missing.tobytes() != _glyphs._ink(font, "A").tobytes()


def test_homoglyphs_of_earlier_scripts_are_dropped(glyphs):
    # Greek capital alpha is Latin A in every font that has both (the cap of 12 classes per
    # script would keep it: it is the first Greek letter).
    assert ord("A") in glyphs.codepoints and 0x391 not in glyphs.codepoints
    a, alpha, b = (np.full((28, 28), v, np.uint8) for v in (0, 0, 255))
    renders = {(0, 1): (a, None), (0, 2): (alpha, None), (0, 3): (b, None), (1, 2): (b, None)}
    faces = {1: [0], 2: [0, 1], 3: [0]}
    assert _glyphs._homoglyphs([1, 2, 3], faces, renders, threshold=0.06) == {2}
    renders[1, 1] = (a, None)  # a copy in one face, not in the other: a tie still drops it
    faces[1] = [0, 1]
    assert _glyphs._homoglyphs([1, 2, 3], faces, renders, threshold=0.06) == {2}


@pytest.mark.parametrize("split", range(datasets.NUM_SPLITS))
def test_base_and_novel_scripts_are_disjoint(glyphs, split):
    base, novel = glyphs.base_classes(split), glyphs.novel_classes(split)
    assert base and novel and not set(base) & set(novel)
    assert sorted(base + novel) == list(range(glyphs.num_classes))
    assert not set(glyphs.base_scripts(split)) & set(glyphs.novel_scripts(split))
    assert {glyphs.class_scripts[c] for c in novel} == set(glyphs.novel_scripts(split))
    others = [glyphs.novel_scripts(s) for s in range(datasets.NUM_SPLITS) if s != split]
    assert all(not set(o) & set(glyphs.novel_scripts(split)) for o in others)
    with pytest.raises(ValueError, match="split"):
        glyphs.novel_classes(datasets.NUM_SPLITS)


def test_load_task_glyphs(glyphs, cache_dir):
    options = dict(cache_dir=cache_dir, **SMALL)
    base = datasets.load_task("glyphs", classes="base", **options)
    assert base.num_classes == len(glyphs.base_classes(0))
    assert base.input_shape == (28, 28, 1) and base.x_train.dtype == np.float32
    novel = datasets.load_task("glyphs", classes="novel", shots=5, split=1, **options)
    assert novel.name == "glyphs/novel/split=1/5-shot/seed=0"
    assert novel.num_classes == len(glyphs.novel_classes(1))
    assert np.bincount(novel.y_train).tolist() == [5] * novel.num_classes
    assert not set(base.class_names) & set(
        datasets.load_task("glyphs", classes="novel", **options).class_names
    )
    armenian = datasets.load_task("glyphs", classes="script:armenian", **options)
    assert all("ARMENIAN" in n for n in armenian.class_names)
    with pytest.raises(ValueError, match="val"):
        datasets.load_task("glyphs", classes="val", **options)


def test_episodes(glyphs, cache_dir):
    novel = datasets.load_task("glyphs", classes="novel", split=1, cache_dir=cache_dir, **SMALL)
    assert novel.num_classes >= 20
    for ways, shots in ((5, 1), (5, 5), (20, 5)):
        episodes = datasets.sample_episodes(novel, ways, shots, num_tasks=3, seed=7)
        assert len(episodes) == 3
        for episode in episodes:
            assert episode.x_train.shape == (ways * shots, 28, 28, 1)
            assert np.bincount(episode.y_train).tolist() == [shots] * ways
            assert set(np.unique(episode.y_test)) == set(range(ways))
            assert len(set(episode.class_names)) == ways
            assert set(episode.class_names) <= set(novel.class_names)
        again = datasets.sample_episodes(novel, ways, shots, num_tasks=4, seed=7)
        for a, b in zip(episodes, again):  # episode i does not depend on num_tasks
            np.testing.assert_array_equal(a.x_train, b.x_train)
            assert a.class_names == b.class_names and a.name == b.name
    other = datasets.sample_episodes(novel, 5, 1, num_tasks=3, seed=8)
    assert [e.class_names for e in other] != [e.class_names for e in episodes[:3]]
    queried = datasets.sample_episodes(novel, 5, 1, num_tasks=1, queries=3)[0]
    assert np.bincount(queried.y_test).tolist() == [3] * 5
    with pytest.raises(ValueError, match="pool"):
        datasets.sample_episodes(novel, novel.num_classes + 1, 1, num_tasks=1)


def test_episodes_test_images_come_from_held_out_fonts(glyphs):
    # From uint8 arrays: the query images are test-font images of the chosen classes.
    source = ((glyphs.x_train, glyphs.y_train), (glyphs.x_test, glyphs.y_test))
    (episode,) = datasets.sample_episodes(source, ways=5, shots=2, num_tasks=1, seed=3)
    chosen = [int(name) for name in episode.class_names]
    expected = np.concatenate([glyphs.x_test[glyphs.y_test == c] for c in chosen])
    np.testing.assert_array_equal(episode.x_test, datasets.to_float_images(expected))


def test_too_few_fonts_is_a_clear_error(tmp_path):
    pytest.importorskip("PIL")
    with pytest.raises(datasets.GlyphsNotFoundError, match="apt-get install fonts-noto-core"):
        datasets.load_glyphs(fonts=[tmp_path], cache=False)
    with pytest.raises(ValueError, match="Unknown scripts"):
        datasets.load_glyphs(scripts=["klingon"], cache=False)


# ----------------------------------------------------------------------------- CIFAR-FS


def _write_cifar100(folder, per_class=(2, 1)):
    """A small CIFAR-100 in the real python format: pickled dicts of bytes keys."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name, n in (("train", per_class[0]), ("test", per_class[1])):
        labels = np.repeat(np.arange(100), n)
        data = rng.integers(0, 256, size=(len(labels), 3072), dtype=np.uint8)
        batch = {
            b"batch_label": name.encode(),
            b"fine_labels": labels.tolist(),
            b"coarse_labels": (labels // 5).tolist(),
            b"data": data,
            b"filenames": [f"{i}.png".encode() for i in range(len(labels))],
        }
        (folder / name).write_bytes(pickle.dumps(batch))
    meta = {
        b"fine_label_names": [n.encode() for n in _cifar.CIFAR100_CLASSES],
        b"coarse_label_names": [b"x"] * 20,
    }
    (folder / "meta").write_bytes(pickle.dumps(meta))


def test_cifar_fs_split_constants():
    assert len(datasets.CIFAR100_CLASSES) == len(set(datasets.CIFAR100_CLASSES)) == 100
    assert list(datasets.CIFAR100_CLASSES) == sorted(datasets.CIFAR100_CLASSES)
    sizes = [
        len(s) for s in (datasets.CIFAR_FS_BASE, datasets.CIFAR_FS_VAL, datasets.CIFAR_FS_NOVEL)
    ]
    assert sizes == [64, 16, 20]
    assert set(datasets.CIFAR_FS_BASE + datasets.CIFAR_FS_VAL + datasets.CIFAR_FS_NOVEL) == set(
        datasets.CIFAR100_CLASSES
    )


def test_cifar_fs_from_a_folder_and_an_archive(tmp_path, monkeypatch):
    folder = tmp_path / "data" / "cifar-100-python"
    _write_cifar100(folder)
    monkeypatch.delenv("KLG_DATA_DIR", raising=False)
    base = datasets.load_task("cifar_fs", classes="base", path=tmp_path / "data")
    assert base.num_classes == 64 and base.input_shape == (32, 32, 3)
    assert base.x_train.shape == (128, 32, 32, 3) and base.x_test.shape == (64, 32, 32, 3)
    assert base.class_names == datasets.CIFAR_FS_BASE
    val = datasets.load_task("cifar_fs", classes="val", path=folder)
    assert val.class_names == datasets.CIFAR_FS_VAL
    # Channels come last, as in keras.datasets.cifar100.
    (x_train, _), _ = datasets.load_cifar100(folder)[0]
    raw = pickle.loads((folder / "train").read_bytes())[b"data"][0]
    np.testing.assert_array_equal(x_train[0, 0, 0], raw[[0, 1024, 2048]])
    # The archive Keras' own loader caches, found in the Keras cache.
    keras_home = tmp_path / "keras"
    (keras_home / "datasets").mkdir(parents=True)
    with tarfile.open(keras_home / "datasets" / "cifar-100-python.tar.gz", "w:gz") as tar:
        tar.add(folder, arcname="cifar-100-python")
    monkeypatch.setenv("KERAS_HOME", str(keras_home))
    novel = datasets.load_task("cifar_fs", classes="novel", shots=1, seed=0)
    assert novel.num_classes == 20 and novel.class_names == datasets.CIFAR_FS_NOVEL
    assert novel.x_train.shape == (20, 32, 32, 3) and novel.x_test.shape == (20, 32, 32, 3)
    episodes = datasets.sample_episodes(
        datasets.load_task("cifar_fs", classes="novel"), ways=5, shots=1, num_tasks=2
    )
    assert [e.x_train.shape for e in episodes] == [(5, 32, 32, 3)] * 2


def test_cifar_missing_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.delenv("KLG_DATA_DIR", raising=False)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    with pytest.raises(datasets.DataNotFoundError, match="Nothing is downloaded"):
        datasets.load_task("cifar_fs", classes="novel")
