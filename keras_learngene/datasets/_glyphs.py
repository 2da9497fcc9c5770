"""Glyphs: a many-class character data set rendered offline from the system's fonts.

One class per character, 28x28 grey uint8 images (white ink on black, like Fashion-MNIST),
classes grouped by script. Nothing is downloaded: the characters are drawn with Pillow
(`pip install keras-learngene[glyphs]`) from the fonts that Debian's font packages install
(`sudo apt-get install fonts-noto-core fonts-dejavu-core`; `fonts-liberation`,
`fonts-freefont-ttf` and `fonts-urw-base35` add more Latin, Greek and Cyrillic typefaces).

- **Typefaces**: every font file found by `fc-list` (or, without fontconfig, by scanning
  `/usr/share/fonts` and `~/.local/share/fonts`), and every named instance of a variable
  font (one file with weight or width axes gives several typefaces).
- **Coverage**: a typeface draws a script only if its character map holds at least half of
  the script's letters, and a character only if the map holds it (read with fontTools when
  installed). Whatever the map says, a render that is blank or equal to the font's
  missing-glyph box (the rendering of the unassigned U+10FFFF) is rejected: no tofu.
- **Rendering**: the ink of each character, drawn at 64 px with Pillow's basic layout (the
  same on every machine, no shaping), is cropped to its bounding box, scaled to fit 24x24
  (a 2-pixel margin) keeping its aspect, and centred. Size is thereby normalised, so a
  lower-case letter that is a small copy of its capital (o/O, Cyrillic к/К) draws the same.
- **Homoglyphs**: a class whose clean renders are nearly identical to those of an earlier
  class (in `SCRIPTS` order) in most typefaces that draw both is dropped: Greek Α and
  Cyrillic А go (Latin A stays), and so does Latin o (O stays). No novel class is then a copy
  of a base class.
- **Train/test by typeface family**: families (fontconfig's family name, with variant
  suffixes such as "Unjoined" folded in) are split once for all scripts, so no family of a
  test image draws any training image. Scripts with the fewest families are served first;
  about `test_fraction` of each script's families, at least one, hold out its test images.
  A class keeps only if it has a typeface on both sides.
- **Augmented copies**: a class with few typefaces (most Noto-only scripts have a sans and a
  serif, each regular and bold) gets deterministic jittered copies of each render (small
  rotation, shear, aspect change, stroke thickening or thinning and shift) until it has
  `min_train` training and `min_test` test images, at most `max_variants` images per
  typeface; copies never cross the train/test line.
- **Base / novel**: each script belongs to one of `NUM_SPLITS` folds (`SCRIPTS`). With
  `split=i` the scripts of fold i are novel (never seen by an ancestry) and the others base.
- **Cache**: the arrays are written to `<cache_dir>/glyphs-<fingerprint>.npz` (cache_dir:
  the argument, else `$KLG_DATA_DIR/klg-glyphs`, else `$KERAS_HOME/datasets/klg-glyphs` or
  `~/.keras/datasets/klg-glyphs`) through a temporary file and `os.replace`. The fingerprint
  hashes the font files (path, size, mtime), the Pillow and FreeType versions, the renderer
  version and every parameter, so the same fonts give the same arrays and a second load
  reads the file.

Font licences (the images are renderings of these fonts; check the packages' copyright files
under `/usr/share/doc/<package>/copyright` for the fonts actually installed):

- Noto (`fonts-noto-core`, `fonts-noto-extra`, ...): SIL Open Font License 1.1.
- DejaVu (`fonts-dejavu-core`, `fonts-dejavu-extra`): the Bitstream Vera Fonts licence
  (permissive; DejaVu's changes are in the public domain), Arev parts under a similar licence.
- Liberation (`fonts-liberation`, `fonts-liberation2`): SIL Open Font License 1.1.
- GNU FreeFont (`fonts-freefont-ttf`/`-otf`): GNU GPL v3 or later with the font exception.
- URW base35 (`fonts-urw-base35`): GNU AGPL v3 with the font exception (older packages:
  GPL v2 with the font exception).
"""

import dataclasses
import hashlib
import json
import math
import os
import pathlib
import shutil
import subprocess
import tempfile
import unicodedata

import numpy as np

from keras_learngene.datasets._fashion_mnist import DATA_DIR_ENV, DataNotFoundError

RENDERER_VERSION = 1
IMAGE_SIZE = 28
NUM_SPLITS = 3
_RENDER_PX = 64
_MISSING = "\U0010ffff"  # an unassigned code point: fonts draw their .notdef box for it
_FONT_SUFFIXES = (".ttf", ".otf", ".ttc", ".otc")
_FONT_DIRS = ("/usr/share/fonts", "/usr/local/share/fonts", "~/.local/share/fonts", "~/.fonts")
_APT_HINT = (
    "sudo apt-get install fonts-noto-core fonts-dejavu-core "
    "(more typefaces: fonts-liberation fonts-freefont-ttf fonts-urw-base35)"
)


@dataclasses.dataclass(frozen=True)
class Script:
    """A script: its name, its code point ranges (inclusive) and its base/novel fold."""

    name: str
    ranges: tuple
    fold: int

    @property
    def codepoints(self):
        """The letters in the ranges, in code point order.

        Letters are the Unicode categories Lu, Ll and Lo, less those with a decomposition
        (a letter plus a mark, such as Greek ά or Cyrillic Й: a variant, not a new shape).
        """
        return tuple(
            c
            for low, high in self.ranges
            for c in range(low, high + 1)
            if unicodedata.category(chr(c)) in ("Lu", "Ll", "Lo")
            and not unicodedata.decomposition(chr(c))
        )


# Order matters: of two homoglyph classes the later is dropped (Latin first). Folds are fixed
# here, not drawn from the fonts found, so a split means the same scripts on every machine.
SCRIPTS = (
    Script("latin", ((0x41, 0x5A), (0x61, 0x7A)), 0),
    Script("greek", ((0x391, 0x3C9),), 1),
    Script("cyrillic", ((0x400, 0x45F),), 2),
    Script("armenian", ((0x531, 0x586),), 1),
    Script("georgian", ((0x10D0, 0x10FA),), 2),
    Script("hebrew", ((0x5D0, 0x5EA),), 0),
    Script("arabic", ((0x621, 0x64A),), 2),
    Script("ethiopic", ((0x1200, 0x137F),), 0),
    Script("devanagari", ((0x904, 0x939),), 1),
    Script("bengali", ((0x985, 0x9B9),), 2),
    Script("gurmukhi", ((0xA05, 0xA39),), 0),
    Script("gujarati", ((0xA85, 0xAB9),), 1),
    Script("oriya", ((0xB05, 0xB39),), 2),
    Script("tamil", ((0xB85, 0xBB9),), 0),
    Script("telugu", ((0xC05, 0xC39),), 1),
    Script("kannada", ((0xC85, 0xCB9),), 2),
    Script("malayalam", ((0xD05, 0xD3A),), 0),
    Script("sinhala", ((0xD85, 0xDC6),), 1),
    Script("thai", ((0xE01, 0xE30),), 2),
    Script("lao", ((0xE81, 0xEB0),), 0),
    Script("tibetan", ((0xF40, 0xF6C),), 1),
    Script("myanmar", ((0x1000, 0x102A),), 2),
    Script("khmer", ((0x1780, 0x17B3),), 0),
    Script("cherokee", ((0x13A0, 0x13F5),), 1),
    Script("canadian_syllabics", ((0x1400, 0x167F),), 2),
    Script("tifinagh", ((0x2D30, 0x2D67),), 1),
    Script("thaana", ((0x780, 0x7A5),), 0),
    Script("nko", ((0x7CA, 0x7EA),), 0),
    Script("ogham", ((0x1681, 0x169A),), 1),
    Script("runic", ((0x16A0, 0x16EA),), 2),
    Script("lisu", ((0xA4D0, 0xA4F7),), 2),
    Script("balinese", ((0x1B05, 0x1B33),), 0),
    Script("grantha", ((0x11305, 0x11339),), 1),
    Script("khojki", ((0x11200, 0x1122B),), 2),
    Script("coptic", ((0x2C80, 0x2CE4),), 0),
    Script("glagolitic", ((0x2C00, 0x2C5F),), 1),
)
SCRIPT_NAMES = tuple(s.name for s in SCRIPTS)
# The ten scripts of the shipped glyph ancestries (`glyphs_vit_tiny`, `glyphs_vgg_iso`) and of
# the benchmark's glyph profiles: `load_task("glyphs", classes="base",
# scripts=ANCESTRY_SCRIPTS)` gives their 333 base classes in the order of their outputs.
ANCESTRY_SCRIPTS = ("latin", "greek", "cyrillic", "armenian", "georgian", "hebrew", "arabic",
                    "thai", "lao", "tifinagh")
_SCRIPTS_BY_NAME = {s.name: s for s in SCRIPTS}

# Families whose letters are borrowed from another family or are not text faces.
_EXCLUDED_FAMILY_WORDS = ("Symbols", "Math", "Music", "Emoji", "Nushu", "SignWriting", "Siyaq")
# Variant names folded into their family for the train/test split.
_FAMILY_SUFFIXES = (" Unjoined", " Slanted", " UI")


class GlyphsNotFoundError(DataNotFoundError):
    """Raised when too few fonts or classes are found to build the glyphs data set."""


@dataclasses.dataclass(frozen=True)
class Typeface:
    """One typeface: a font file (and face index) and, for a variable font, a named instance."""

    path: str
    index: int
    family: str
    style: str
    instance: str = ""

    @property
    def name(self):
        """`"<family> <style>"`, e.g. `"DejaVu Sans Bold"`."""
        style = self.instance or self.style
        return f"{self.family} {style}".strip()


def _family_key(family):
    for suffix in _FAMILY_SUFFIXES:
        family = family.removesuffix(suffix)
    return family


def _fc_list():
    """`(path, index, family, style)` of each font fontconfig knows, or None without it."""
    if shutil.which("fc-list") is None:
        return None
    try:
        out = subprocess.run(
            ["fc-list", "--format", "%{file}\t%{index}\t%{family[0]}\t%{style[0]}\n"],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    rows = set()
    for line in out.splitlines():
        parts = line.split("\t")
        if len(parts) != 4 or not parts[0].lower().endswith(_FONT_SUFFIXES):
            continue
        try:
            index = int(parts[1]) & 0xFFFF  # high bits number a variable font's instances
        except ValueError:
            continue
        rows.add((parts[0], index, parts[2], parts[3]))
    return sorted(rows)


def _scan_file(path):
    """`(path, index, family, style)` of each face of one font file, named by Pillow."""
    from PIL import ImageFont

    rows = []
    for index in range(64):
        try:
            font = ImageFont.truetype(str(path), 12, index=index)
        except OSError:
            break
        family, style = font.getname()
        rows.append((str(path), index, family or path.stem, style or ""))
        if not path.suffix.lower().endswith("c"):  # only collections hold several faces
            break
    return rows


def _scan_dirs(dirs):
    """Font files under `dirs` (the fallback without fontconfig)."""
    rows = []
    for folder in dirs:
        folder = pathlib.Path(folder).expanduser()
        if folder.is_dir():
            for path in sorted(folder.rglob("*")):
                if path.suffix.lower() in _FONT_SUFFIXES and path.is_file():
                    rows += _scan_file(path)
    return sorted(set(rows))


def find_fonts(fonts=None):
    """Lists the typefaces the glyphs are drawn from.

    Args:
        fonts: None for the system's fonts (`fc-list`, else a scan of the usual font
            folders), or a sequence of font files and folders to use instead.

    Returns:
        A sorted tuple of `Typeface`, one per face and per named instance of a variable
        font; families that are not text faces (symbols, math, music) are left out.

    Example:

    >>> faces = find_fonts()  # doctest: +SKIP
    >>> faces[0].name  # doctest: +SKIP
    'DejaVu Sans Bold'
    """
    from PIL import ImageFont

    if fonts is None:
        rows = _fc_list()
        if rows is None:
            rows = _scan_dirs(_FONT_DIRS)
    else:
        files = [pathlib.Path(f).expanduser() for f in fonts]
        rows = _scan_dirs([f for f in files if f.is_dir()])
        rows += [r for f in files if f.is_file() for r in _scan_file(f)]
    faces = set()
    for path, index, family, style in rows:
        if any(word in family for word in _EXCLUDED_FAMILY_WORDS):
            continue
        family = _family_key(family)
        try:
            font = ImageFont.truetype(path, _RENDER_PX, index=index)
        except OSError:
            continue
        try:
            instances = [
                n.decode() if isinstance(n, bytes) else n for n in font.get_variation_names()
            ]
        except (OSError, AttributeError):
            instances = []
        if instances:
            faces.update(Typeface(path, index, family, style, n) for n in dict.fromkeys(instances))
        else:
            faces.add(Typeface(path, index, family, style))
    return tuple(sorted(faces, key=lambda f: (f.family, f.name, f.path, f.index)))


def _cmap(face):
    """The set of code points `face` maps, or None when fontTools is not installed."""
    try:
        from fontTools.ttLib import TTFont
    except ImportError:
        return None
    try:
        with TTFont(face.path, fontNumber=face.index, lazy=True) as font:
            return set(font.getBestCmap() or {})
    except Exception:  # noqa: BLE001 - an unreadable table means: trust the renders only
        return None


def _open(face):
    from PIL import ImageFont

    font = ImageFont.truetype(
        face.path, _RENDER_PX, index=face.index, layout_engine=ImageFont.Layout.BASIC
    )
    if face.instance:
        font.set_variation_by_name(face.instance)
    return font


def _ink(font, char):
    """The cropped ink of `char` as an "L" image at render size, or None if blank."""
    from PIL import Image, ImageDraw

    left, top, right, bottom = font.getbbox(char)
    if right <= left or bottom <= top:
        return None
    image = Image.new("L", (right - left + 4, bottom - top + 4))
    ImageDraw.Draw(image).text((2 - left, 2 - top), char, font=font, fill=255)
    box = image.getbbox()
    return None if box is None else image.crop(box)


def _jitter(ink, rng):
    """A deterministic small distortion of a cropped ink image (augmented copies)."""
    from PIL import Image, ImageFilter

    stroke = rng.integers(-1, 2)
    if stroke > 0:
        ink = ink.filter(ImageFilter.MaxFilter(3))
    elif stroke < 0 and min(ink.size) > 12:
        ink = ink.filter(ImageFilter.MinFilter(3))
    angle = math.radians(rng.uniform(-10, 10))
    shear = rng.uniform(-0.15, 0.15)
    sx, sy = rng.uniform(0.85, 1.15), rng.uniform(0.85, 1.15)
    # Forward map A = R(angle) @ Shear @ Scale; Pillow wants the inverse, output -> input.
    cos, sin = math.cos(angle), math.sin(angle)
    a = np.array([[cos, -sin], [sin, cos]]) @ np.array([[1, shear], [0, 1]]) @ np.diag([sx, sy])
    w, h = ink.size
    corners = a @ np.array([[0, w, 0, w], [0, 0, h, h]], dtype=float)
    low = corners.min(axis=1)
    size = np.ceil(corners.max(axis=1) - low).astype(int) + 2
    inv = np.linalg.inv(a)
    offset = inv @ (low - 1)
    data = (inv[0, 0], inv[0, 1], offset[0], inv[1, 0], inv[1, 1], offset[1])
    out = ink.transform(tuple(size), Image.Transform.AFFINE, data, Image.Resampling.BILINEAR)
    box = out.getbbox()
    return ink if box is None else out.crop(box)


def _place(ink, margin, shift=(0, 0)):
    """Scales a cropped ink image to fit the box and centres it on a 28x28 uint8 canvas."""
    from PIL import Image

    box = IMAGE_SIZE - 2 * margin
    w, h = ink.size
    scale = box / max(w, h)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    small = ink.resize(size, Image.Resampling.LANCZOS)
    canvas = Image.new("L", (IMAGE_SIZE, IMAGE_SIZE))
    x = (IMAGE_SIZE - size[0]) // 2 + shift[0]
    y = (IMAGE_SIZE - size[1]) // 2 + shift[1]
    canvas.paste(small, (x, y))
    return np.asarray(canvas, dtype=np.uint8)


def _stable_int(text):
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "little")


def _coverage(faces, scripts, min_coverage=0.5):
    """For each face: `{script: code points}` it maps, and whether its cmap was read.

    A face covers a script when its cmap holds `min_coverage` of the script's letters.
    Without fontTools every script is a candidate and the renders decide (`_render_clean`).
    """
    cover = []
    for face in faces:
        cmap = _cmap(face)
        if cmap is None:
            cover.append(({s.name: s.codepoints for s in scripts}, False))
            continue
        entry = {}
        for script in scripts:
            held = tuple(c for c in script.codepoints if c in cmap)
            if held and len(held) >= min_coverage * len(script.codepoints):
                entry[script.name] = held
        cover.append((entry, True))
    return cover


def _render_clean(faces, cover, scripts, margin, min_coverage=0.5):
    """Clean renders: `{(face index, code point): (28x28 uint8 array, hi-res ink)}`."""
    renders = {}
    for f, face in enumerate(faces):
        entry, known = cover[f]
        if not entry:
            continue
        try:
            font = _open(face)
        except OSError:
            continue
        missing = _ink(font, _MISSING)
        missing_key = None if missing is None else (missing.size, missing.tobytes())
        for script in scripts:
            drawn = {}
            for c in entry.get(script.name, ()):
                ink = _ink(font, chr(c))
                if ink is None or (ink.size, ink.tobytes()) == missing_key:
                    continue  # blank, or the missing-glyph box (tofu)
                drawn[c] = ink
            if not known and len(drawn) < min_coverage * len(script.codepoints):
                continue  # without a cmap, a face must draw the script itself
            for c, ink in drawn.items():
                renders[f, c] = (_place(ink, margin), ink)
    return renders


def _split_families(faces, class_faces, scripts_of_class, test_fraction):
    """Assigns each family to train (False) or test (True), for all scripts at once."""
    families_of_script = {}
    for c, fs in class_faces.items():
        families_of_script.setdefault(scripts_of_class[c], set()).update(
            faces[f].family for f in fs
        )
    order = sorted(families_of_script, key=lambda s: (len(families_of_script[s]), s))
    is_test = {}
    for script in order:
        families = families_of_script[script]
        if len(families) < 2:
            continue
        wanted = max(1, round(len(families) * test_fraction))
        wanted = min(wanted, len(families) - 1)
        n_test = sum(is_test.get(f) is True for f in families)
        for family in sorted(families - set(is_test), key=lambda f: (_stable_int(f), f)):
            is_test[family] = n_test < wanted
            n_test += is_test[family]
    return is_test


def _homoglyphs(classes, class_faces, renders, threshold):
    """The classes to drop: near copies of an earlier class in most faces drawing both."""
    rank = {c: i for i, c in enumerate(classes)}
    by_face = {}
    for c in classes:
        for f in class_faces[c]:
            by_face.setdefault(f, []).append(rank[c])
    n = len(classes)
    shared = np.zeros((n, n), dtype=np.int32)
    votes = np.zeros((n, n), dtype=np.int32)
    for f, members in by_face.items():
        if len(members) < 2:
            continue
        x = np.stack([renders[f, classes[i]][0].ravel() for i in members]).astype(np.float32)
        x /= 255
        sq = (x * x).sum(axis=1)
        dist = (sq[:, None] + sq[None, :] - 2 * x @ x.T) / x.shape[1]
        close = np.sqrt(np.maximum(dist, 0)) < threshold
        block = np.ix_(members, members)
        shared[block] += 1
        votes[block] += close
    same = (shared > 0) & (votes * 2 >= shared)
    keep = np.ones(n, dtype=bool)
    for j in range(1, n):
        if (same[:j, j] & keep[:j]).any():
            keep[j] = False
    return {classes[i] for i in np.flatnonzero(~keep)}


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class GlyphData:
    """The rendered glyphs: images, labels, typefaces and the script of each class.

    Attributes:
        x_train, y_train: uint8 images `(N, 28, 28)` from the training families, int64
            labels `0..num_classes - 1`.
        x_test, y_test: the same from the held-out (test) families.
        font_train, font_test: index into `fonts` of each image's typeface.
        class_names: one name per label, e.g. `"U+0041 LATIN CAPITAL LETTER A"`.
        class_scripts: the script of each class, one of `SCRIPT_NAMES`.
        codepoints: the code point of each class.
        fonts: the name of each typeface (`Typeface.name`).
        font_families: the family of each typeface.
        test_families: the families that hold the test images.
        fingerprint: the hash naming the cache file.
        cache_file: the `.npz` the arrays were read from or written to (None if not cached).
    """

    x_train: np.ndarray
    y_train: np.ndarray
    font_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    font_test: np.ndarray
    class_names: tuple
    class_scripts: tuple
    codepoints: tuple
    fonts: tuple
    font_families: tuple
    test_families: tuple
    fingerprint: str
    cache_file: object = None

    @property
    def num_classes(self):
        return len(self.class_names)

    @property
    def scripts(self):
        """The scripts that have classes, in `SCRIPTS` order."""
        present = set(self.class_scripts)
        return tuple(s for s in SCRIPT_NAMES if s in present)

    def classes_of(self, scripts):
        """The labels of the classes of some scripts, in label order."""
        scripts = {scripts} if isinstance(scripts, str) else set(scripts)
        return tuple(c for c, s in enumerate(self.class_scripts) if s in scripts)

    def novel_scripts(self, split=0):
        """The scripts of fold `split` (novel); see `SCRIPTS`."""
        split = _check_split(split)
        return tuple(s for s in self.scripts if _SCRIPTS_BY_NAME[s].fold == split)

    def base_scripts(self, split=0):
        """The scripts not in fold `split` (base)."""
        novel = set(self.novel_scripts(split))
        return tuple(s for s in self.scripts if s not in novel)

    def base_classes(self, split=0):
        """Labels of the base classes of `split` (every script outside fold `split`)."""
        return self.classes_of(self.base_scripts(split))

    def novel_classes(self, split=0):
        """Labels of the novel classes of `split` (the scripts of fold `split`)."""
        return self.classes_of(self.novel_scripts(split))

    def __repr__(self):
        return (
            f"GlyphData({self.num_classes} classes in {len(self.scripts)} scripts, "
            f"train={self.x_train.shape}, test={self.x_test.shape}, {len(self.fonts)} "
            f"typefaces, fingerprint={self.fingerprint!r})"
        )


def _check_split(split):
    if isinstance(split, bool) or not isinstance(split, (int, np.integer)):
        raise ValueError(f"split must be an int in 0..{NUM_SPLITS - 1}, got {split!r}.")
    if not 0 <= split < NUM_SPLITS:
        raise ValueError(f"split must be in 0..{NUM_SPLITS - 1}, got {split}.")
    return int(split)


def glyphs_cache_dir(cache_dir=None):
    """The folder of the glyphs cache: `cache_dir`, `$KLG_DATA_DIR/klg-glyphs` or the Keras
    cache's `datasets/klg-glyphs`."""
    if cache_dir is not None:
        return pathlib.Path(cache_dir).expanduser()
    if os.environ.get(DATA_DIR_ENV):
        return pathlib.Path(os.environ[DATA_DIR_ENV]).expanduser() / "klg-glyphs"
    keras_home = os.environ.get("KERAS_HOME") or pathlib.Path.home() / ".keras"
    return pathlib.Path(keras_home) / "datasets" / "klg-glyphs"


def _fingerprint(faces, params):
    from PIL import __version__ as pil_version
    from PIL import features

    try:
        import fontTools

        fonttools_version = fontTools.version
    except ImportError:
        fonttools_version = None
    files = []
    for path in sorted({f.path for f in faces}):
        stat = os.stat(path)
        files.append((path, stat.st_size, stat.st_mtime_ns))
    record = {
        "renderer": RENDERER_VERSION,
        "pillow": pil_version,
        "freetype": features.version("freetype2"),
        "fonttools": fonttools_version is not None,
        "unicodedata": unicodedata.unidata_version,
        "params": params,
        "files": files,
        "faces": [dataclasses.astuple(f) for f in faces],
    }
    blob = json.dumps(record, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:20]


def _scripts_arg(scripts):
    if scripts is None:
        return SCRIPTS
    if isinstance(scripts, str):
        scripts = (scripts,)
    unknown = [s for s in scripts if s not in _SCRIPTS_BY_NAME]
    if unknown:
        raise ValueError(f"Unknown scripts {unknown}; valid names: {', '.join(SCRIPT_NAMES)}.")
    wanted = set(scripts)
    return tuple(s for s in SCRIPTS if s.name in wanted)


def _not_found(reason):
    return GlyphsNotFoundError(
        f"Cannot build the glyphs data set: {reason}. The glyphs are drawn from installed "
        f"fonts; on Debian/Ubuntu install them with: {_APT_HINT}."
    )


_DEFAULTS = dict(
    test_fraction=1 / 3,
    min_train=20,
    min_test=10,
    max_variants=10,
    max_classes_per_script=None,
    margin=2,
    homoglyph_threshold=0.06,
    min_classes=10,
)


def _prepare(scripts, fonts, families, options):
    """Checks the arguments; returns `(scripts, typefaces, fingerprint)`."""
    unknown = set(options) - set(_DEFAULTS)
    if unknown:
        raise TypeError(f"Unknown glyphs options {sorted(unknown)}; valid: {sorted(_DEFAULTS)}.")
    params = {**_DEFAULTS, **options}
    if not 0 < params["test_fraction"] < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {params['test_fraction']}.")
    if min(params["min_train"], params["min_test"], params["max_variants"]) < 1:
        raise ValueError("min_train, min_test and max_variants must be positive.")
    try:
        import PIL  # noqa: F401
    except ImportError as error:
        raise ImportError(
            "The glyphs data set needs Pillow: `pip install pillow` or "
            "`pip install keras-learngene[glyphs]`."
        ) from error
    chosen = _scripts_arg(scripts)
    faces = find_fonts(fonts)
    if families is not None:
        wanted = {_family_key(f) for f in ([families] if isinstance(families, str) else families)}
        faces = tuple(f for f in faces if f.family in wanted)
        params["families"] = sorted(wanted)
    params["scripts"] = [s.name for s in chosen]
    return chosen, faces, params, _fingerprint(faces, params)


def render_glyphs(scripts=None, fonts=None, families=None, **options):
    """Renders the glyphs data set without any cache; `load_glyphs` caches it.

    Takes the arguments of `load_glyphs` but `cache_dir` and `cache`.

    Returns:
        `(arrays, fingerprint)`: the dict of arrays a cache file stores, and its fingerprint.
    """
    chosen, faces, params, fingerprint = _prepare(scripts, fonts, families, options)
    margin, max_variants = params["margin"], params["max_variants"]
    min_train, min_test = params["min_train"], params["min_test"]
    max_classes_per_script = params["max_classes_per_script"]
    if not faces:
        raise _not_found("no font files were found")

    cover = _coverage(faces, chosen)
    renders = _render_clean(faces, cover, chosen, margin)
    script_of = {c: s.name for s in reversed(chosen) for c in s.codepoints}
    order = [c for s in chosen for c in s.codepoints]
    class_faces = {}
    for f, c in sorted(renders):
        class_faces.setdefault(c, []).append(f)
    classes = [c for c in dict.fromkeys(order) if c in class_faces]
    dropped = _homoglyphs(classes, class_faces, renders, params["homoglyph_threshold"])
    classes = [c for c in classes if c not in dropped]

    is_test = _split_families(
        faces, {c: class_faces[c] for c in classes}, script_of, params["test_fraction"]
    )
    kept = []
    for c in classes:
        sides = [
            [f for f in class_faces[c] if is_test.get(faces[f].family) is t] for t in (False, True)
        ]
        if not sides[0] or not sides[1]:
            continue
        if len(sides[0]) * max_variants < min_train or len(sides[1]) * max_variants < min_test:
            continue
        kept.append((c, sides))
    if max_classes_per_script is not None:
        by_script = {}
        for item in kept:
            by_script.setdefault(script_of[item[0]], []).append(item)
        kept = []
        for items in by_script.values():
            if len(items) > max_classes_per_script:
                pick = np.linspace(0, len(items) - 1, max_classes_per_script).round().astype(int)
                items = [items[i] for i in pick]
            kept.extend(items)
        kept.sort(key=lambda item: order.index(item[0]))
    if len(kept) < params["min_classes"]:
        raise _not_found(
            f"only {len(kept)} classes have typefaces in both the training and the test "
            f"families (fewer than min_classes={params['min_classes']}; {len(faces)} "
            "typefaces found)"
        )

    images, labels, face_ids, test_flags = [], [], [], []
    for label, (c, sides) in enumerate(kept):
        for flag, side, target in ((False, sides[0], min_train), (True, sides[1], min_test)):
            variants = min(max_variants, max(1, math.ceil(target / len(side))))
            for f in side:
                image, ink = renders[f, c]
                seed = (c, _stable_int(faces[f].name), RENDERER_VERSION)
                rng = np.random.default_rng(seed)
                for v in range(variants):
                    if v == 0:
                        images.append(image)
                    else:
                        shift = tuple(int(s) for s in rng.integers(-1, 2, size=2))
                        images.append(_place(_jitter(ink, rng), margin, shift))
                    labels.append(label)
                    face_ids.append(f)
                    test_flags.append(flag)
    used = sorted(set(face_ids))
    remap = {f: i for i, f in enumerate(used)}
    names = []
    for c, _ in kept:
        name = unicodedata.name(chr(c), "")
        names.append(f"U+{c:04X} {name}".strip())
    arrays = {
        "images": np.stack(images).astype(np.uint8),
        "labels": np.asarray(labels, dtype=np.int64),
        "fonts": np.asarray([remap[f] for f in face_ids], dtype=np.int64),
        "is_test": np.asarray(test_flags, dtype=bool),
        "codepoints": np.asarray([c for c, _ in kept], dtype=np.int64),
        "class_names": np.asarray(names, dtype=str),
        "class_scripts": np.asarray([script_of[c] for c, _ in kept], dtype=str),
        "font_names": np.asarray([faces[f].name for f in used], dtype=str),
        "font_families": np.asarray([faces[f].family for f in used], dtype=str),
        "test_families": np.asarray(sorted(f for f, t in is_test.items() if t), dtype=str),
        "fingerprint": np.asarray(fingerprint),
    }
    return arrays, fingerprint


def _save(arrays, file):
    file.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(dir=file.parent, prefix=file.stem, suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as f:
            np.savez_compressed(f, **arrays)
        os.chmod(temp, 0o644)  # mkstemp makes it private; the cache is a plain data file
        os.replace(temp, file)
    except BaseException:
        pathlib.Path(temp).unlink(missing_ok=True)
        raise


def _to_data(arrays, file):
    test = arrays["is_test"]
    out = {}
    for key, mask in (("train", ~test), ("test", test)):
        out["x_" + key] = arrays["images"][mask]
        out["y_" + key] = arrays["labels"][mask]
        out["font_" + key] = arrays["fonts"][mask]
    for array in out.values():
        array.setflags(write=False)
    return GlyphData(
        **out,
        class_names=tuple(str(n) for n in arrays["class_names"]),
        class_scripts=tuple(str(s) for s in arrays["class_scripts"]),
        codepoints=tuple(int(c) for c in arrays["codepoints"]),
        fonts=tuple(str(n) for n in arrays["font_names"]),
        font_families=tuple(str(n) for n in arrays["font_families"]),
        test_families=tuple(str(n) for n in arrays["test_families"]),
        fingerprint=str(arrays["fingerprint"]),
        cache_file=file,
    )


_MEMORY = {}


def load_glyphs(
    scripts=None,
    fonts=None,
    families=None,
    cache_dir=None,
    cache=True,
    test_fraction=1 / 3,
    min_train=20,
    min_test=10,
    max_variants=10,
    max_classes_per_script=None,
    margin=2,
    homoglyph_threshold=0.06,
    min_classes=10,
):
    """Loads the glyphs data set, rendering it from the installed fonts on first use.

    See the module docstring for how characters are rendered, deduplicated and split.

    Args:
        scripts: names from `SCRIPT_NAMES` to draw; None for all.
        fonts: None for the system's fonts, or font files and folders to use instead.
        families: None, or the typeface families to keep (e.g. `["DejaVu Sans"]`).
        cache_dir: folder of the `.npz` cache; see `glyphs_cache_dir`.
        cache: False renders without reading or writing the cache.
        test_fraction: about this fraction of each script's families holds the test images.
        min_train, min_test: images a class needs in train and in test; classes with fewer
            typefaces get augmented copies up to this many (see `max_variants`).
        max_variants: the most images drawn per typeface and class (1: no augmentation).
            A class whose typefaces cannot reach `min_train`/`min_test` is dropped.
        max_classes_per_script: None, or keep at most this many classes of each script
            (evenly spaced in code point order).
        margin: pixels left empty on each side of the 28x28 image.
        homoglyph_threshold: RMS pixel difference (in [0, 1]) below which two classes'
            renders in one typeface count as the same glyph.
        min_classes: fewer classes than this is an error.

    Returns:
        A `GlyphData`.

    Raises:
        GlyphsNotFoundError: (a `DataNotFoundError`) if too few fonts or classes are found;
            the message says which packages to install.
        ImportError: if Pillow is not installed.
        ValueError: for unknown scripts or invalid parameters.

    Example:

    >>> data = load_glyphs(scripts=["latin", "greek", "armenian"])  # doctest: +SKIP
    >>> data.novel_scripts(split=1)  # doctest: +SKIP
    ('greek', 'armenian')
    """
    options = dict(
        test_fraction=test_fraction,
        min_train=min_train,
        min_test=min_test,
        max_variants=max_variants,
        max_classes_per_script=max_classes_per_script,
        margin=margin,
        homoglyph_threshold=homoglyph_threshold,
        min_classes=min_classes,
    )
    if not cache:
        arrays, _ = render_glyphs(scripts, fonts, families, **options)
        return _to_data(arrays, None)
    # The fingerprint needs only the list of fonts, not the renders.
    _, _, _, fingerprint = _prepare(scripts, fonts, families, options)
    file = glyphs_cache_dir(cache_dir) / f"glyphs-{fingerprint}.npz"
    key = (str(file), fingerprint)
    if key in _MEMORY and file.is_file():
        return _MEMORY[key]
    data = None
    if file.is_file():
        try:
            with np.load(file) as npz:
                arrays = {k: npz[k] for k in npz.files}
            if str(arrays.get("fingerprint")) == fingerprint:
                data = _to_data(arrays, file)
        except (OSError, ValueError, KeyError):
            data = None  # a corrupt or foreign file: render again and replace it
    if data is None:
        arrays, rendered = render_glyphs(scripts, fonts, families, **options)
        if rendered != fingerprint:  # pragma: no cover - both hash the same inputs
            raise RuntimeError("glyphs fingerprint mismatch")
        _save(arrays, file)
        data = _to_data(arrays, file)
    _MEMORY.clear()
    _MEMORY[key] = data
    return data
