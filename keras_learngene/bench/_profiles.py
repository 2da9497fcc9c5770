"""Benchmark profiles: what `klg bench --profile NAME` trains and measures.

A profile fixes everything a result depends on (data sets and their
base/novel splits, ancestries, methods, N-way K-shot tasks, the step budget
and its checkpoints, the schedule, augmentation, the hyperparameter grid);
the output folder remembers its profile, so a resumed run cannot mix two.

This is protocol v2 (docs/benchmark.md): descendant tasks are N-way K-shot
episodes on novel classes (`keras_learngene.datasets.sample_episodes`), each
run is evaluated at log-spaced checkpoints on a validation split (which
decides the plateau) and on the test images, under a constant learning rate
after warm-up. Results of protocol v1 (`docs/results/full`) are still
reported by `write_report`.
"""

import dataclasses

from keras_learngene.bench._stats import log_checkpoints

VERSION = 2
# the benchmark's own baselines; every other entry of `Profile.methods` is a
# registered condensing method (`klg plugins --all`), plugins' included.
# "random" is the null of the selection: a random valid chain of k units.
BASELINES = ("scratch", "ancestry", "random")
METHODS = ("scratch", "random", "front", "back", "weight_selection", "auto", "auto_distill",
           "heur", "tleg", "sws", "ancestry")
# the reference rows: linear probes (ridge, `_stats.ridge_probe`) on one task's images
PROBES = ("probe_pixels", "probe_ancestry", "probe_learngene")


@dataclasses.dataclass(frozen=True)
class Data:
    """One data set of a profile and the tasks drawn from it.

    Attributes:
        name: `"glyphs"`, `"fashion_mnist"`, `"embedded"` or `"cifar_fs"`
            (`keras_learngene.datasets.load_task`).
        splits: base/novel splits (`split=` of glyphs; `(0,)` elsewhere).
        ways: N of the N-way tasks (Fashion-MNIST: 4, its four novel classes).
        shots: K, training images per class.
        tasks: episodes per (split, N, K); the initialisation seed of a run is
            its episode's index, so every method meets the same task and seed.
        steps: optimizer steps of every run (the equal budget).
        checkpoints: steps at which validation and test accuracy are measured.
        ancestry_epochs: epochs of each ancestry on the base classes.
        val_fraction: share of each class's held-out images that validate
            (the plateau rule reads them); the rest test.
        flip: horizontal flips in the augmentation (False: characters, digits).
        options: `load_task` options (glyphs: `load_glyphs` arguments).
        pairs: `(N, K)` pairs to run instead of every N with every K.
        ancestry_examples: train each ancestry on this many base images (a
            fixed random subset; None: all of them).
    """

    name: str
    splits: tuple = (0,)
    ways: tuple = (5,)
    shots: tuple = (1, 5, 10, 20)
    tasks: int = 10
    steps: int = 300
    checkpoints: tuple = ()
    ancestry_epochs: int = 3
    val_fraction: float = 0.5
    flip: bool = False
    options: dict = dataclasses.field(default_factory=dict)
    pairs: tuple = ()
    ancestry_examples: int = None

    def __post_init__(self):
        if not self.checkpoints:
            object.__setattr__(self, "checkpoints", log_checkpoints(self.steps))

    def tasks_of(self):
        """The `(N, K)` pairs of this data set, in order."""
        if self.pairs:
            return tuple(tuple(p) for p in self.pairs)
        return tuple((n, k) for n in self.ways for k in self.shots)


@dataclasses.dataclass(frozen=True)
class Profile:
    """One benchmark configuration.

    Attributes:
        name: profile name.
        data: the `Data` sets.
        ancestries: `{arch: spec}`; a spec has `preset` and optional builder
            `overrides`, `data` (the data set names this arch runs on; default
            all) and `methods` (a subset of the profile's for this arch).
        methods: initialisations compared: `"scratch"`, `"random"` (a random
            valid chain of k units), `"ancestry"` (every unit, fine-tuned),
            registered condensing methods, and recipes `<method>+<parts>` of
            a condensing method (`bench._runner.Recipe`: parts `identity`,
            `head`, `gentle`).
        focus: the method whose claims are measured against scratch.
        k: ancestry units in each learngene.
        n_fresh: fresh units stacked on the learngene in every descendant.
        condense_seeds: seeds of the seeded methods' condensings; episode i
            uses `condense_seeds[i % len(condense_seeds)]`.
        default: the `learning_rate` and `batch_size` of the main runs.
        schedule: `training.compile_model(schedule=...)`; `"constant"` after
            `warmup_steps` of linear warm-up.
        warmup_steps: warm-up steps (the same whatever the budget).
        grid: the `learning_rate` x `batch_size` grid of the sensitivity runs.
        sensitivity: `{"data", "ways", "shots", "tasks", "methods"}` of the
            sensitivity runs (the first split).
        probes: whether the reference rows (linear probes) are computed.
        transfer_shots: K of the unit-transfer probe (each ancestry unit's
            features against pixels on novel tasks of the first N).
        plateau_tol: tolerance of the plateau rule (a fraction).
        probe_size: base-class images given to condensing.
        cost_steps: steps timed for the ancestry-epoch and overhead figures
            (0: no cost figures).
    """

    name: str
    data: tuple
    ancestries: dict
    methods: tuple = METHODS
    focus: str = "auto"
    k: int = 3
    n_fresh: int = 3
    condense_seeds: tuple = (0, 1)
    default: dict = dataclasses.field(
        default_factory=lambda: {"learning_rate": 1e-3, "batch_size": 32})
    schedule: str = "constant"
    warmup_steps: int = 10
    grid: dict = dataclasses.field(
        default_factory=lambda: {"learning_rate": (1e-4, 3e-4, 1e-3, 3e-3),
                                 "batch_size": (16, 64)})
    sensitivity: dict = dataclasses.field(
        default_factory=lambda: {"data": "glyphs", "ways": 5, "shots": 5, "tasks": 5,
                                 "methods": ("scratch", "auto")})
    probes: bool = True
    transfer_shots: tuple = (1, 5)
    plateau_tol: float = 0.01
    probe_size: int = 3000
    cost_steps: int = 60
    version: int = VERSION

    def to_json(self):
        """The profile as plain JSON data (tuples become lists)."""
        return _plain(dataclasses.asdict(self))

    def data_of(self, name):
        return next(d for d in self.data if d.name == name)

    def archs_of(self, data):
        return [a for a, spec in self.ancestries.items() if data in spec.get("data", [data])]

    @property
    def reference(self):
        """The method whose learngene the cost figures and the learngene probe
        use: the focus method, else the first condensing method run, else front
        (of a recipe `<method>+<parts>`, its method)."""
        if self.focus in self.methods:
            return base_method(self.focus)
        return next((base_method(m) for m in self.methods if base_method(m) not in BASELINES),
                    "front")

    def methods_of(self, arch):
        chosen = self.ancestries[arch].get("methods")
        return tuple(m for m in self.methods if chosen is None or m in chosen)


def base_method(row):
    """The method of a row: `"auto"` for `"auto+identity+head"` (the runner's
    `Recipe` parses and checks the parts)."""
    return str(row).split("+", 1)[0]


def _plain(value):
    if isinstance(value, dict):
        return {key: _plain(v) for key, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


# the headstart profile's rows: the paper's inheritance, then recipes <method>+<parts>
HEADSTART_ROWS = ("scratch", "front", "auto", "auto+identity", "auto+head", "auto+identity+head",
                  "auto+identity+head+gentle", "front+identity+head+gentle")

_TINY_VIT = {"patch_size": 7, "num_layers": 4, "hidden_dim": 16, "num_heads": 2, "mlp_dim": 32}
_TINY_CNN = {"filters": [8, 8, 8, 8], "stem_filters": 8}
# six scripts of the glyphs (about 9,000 training images, 2 s to render once)
QUICK_SCRIPTS = ("latin", "greek", "cyrillic", "armenian", "georgian", "hebrew")
PILOT_SCRIPTS = QUICK_SCRIPTS + ("arabic", "thai", "lao", "tifinagh")

PROFILES = {
    # A few minutes on 2 CPU cores (about 1.5 with PyTorch, whose eager tiny
    # models need no tracing; 5 to 7 with TensorFlow, spent tracing each new
    # model's train step): tiny ancestries trained one epoch on six glyph
    # scripts, 5-way 1- and 5-shot tasks, 12 steps. A smoke test of the whole
    # pipeline (CI runs it); its numbers mean little.
    "quick": Profile(
        name="quick",
        data=(Data("glyphs", shots=(1, 5), tasks=2, steps=12, ancestry_epochs=1,
                   ancestry_examples=1024, options={"scripts": QUICK_SCRIPTS}),),
        ancestries={"vit": {"preset": "vit_tiny", "overrides": _TINY_VIT},
                    "cnn": {"preset": "vgg_iso", "overrides": _TINY_CNN}},
        methods=("scratch", "random", "front", "auto", "ancestry"),
        k=2, n_fresh=1, condense_seeds=(0,), warmup_steps=2,
        default={"learning_rate": 1e-3, "batch_size": 16},
        grid={"learning_rate": (1e-3, 3e-3), "batch_size": (16,)},
        sensitivity={"data": "glyphs", "ways": 5, "shots": 5, "tasks": 2,
                     "methods": ("scratch", "auto")},
        transfer_shots=(1,), probe_size=256, cost_steps=5,
    ),
    # The pilot of docs/results/pilot (about 10 minutes on 2 CPU cores with
    # TensorFlow): ten scripts, split 0, the library's ViT and CNN trained 3
    # epochs, 5-way K = 1 and 5, 3 episodes each, 60 steps per run.
    "pilot": Profile(
        name="pilot",
        data=(Data("glyphs", ways=(5,), shots=(1, 5), tasks=3, steps=60, ancestry_epochs=3,
                   options={"scripts": PILOT_SCRIPTS}),),
        ancestries={"vit": {"preset": "vit_tiny"}, "cnn": {"preset": "vgg_iso"}},
        methods=("scratch", "random", "front", "auto"),
        condense_seeds=(0,),
        grid={"learning_rate": (1e-3, 3e-3), "batch_size": (32,)},
        sensitivity={"data": "glyphs", "ways": 5, "shots": 5, "tasks": 2,
                     "methods": ("scratch", "auto")},
        transfer_shots=(1, 5), probe_size=1000, cost_steps=20,
    ),
    # The v2 protocol cut to about 150 minutes on 2 CPU cores at 0.1 s per
    # step (docs/benchmark.md says what was cut and what a loaded machine
    # takes): glyph split 0 of the ten pilot scripts only; 20-way at K = 5
    # only; 100 steps per glyph run; Fashion-MNIST on the CNN only, K <= 200,
    # 5 tasks; heur on the CNN only;
    # back-k, TLEG, SWS, the distilled Auto and the whole ancestry left to the
    # gpu profile; weight selection left out (with units of one width it
    # copies front-k's units exactly).
    "full": Profile(
        name="full",
        data=(
            # the ten pilot scripts (333 base, 107 novel classes on split 0) and 20
            # ancestry epochs: benchmarks/ancestry_plateau.py measured the units beating
            # pixels there (docs/benchmark.md); 3 epochs left both ancestries below 8%
            Data("glyphs", ways=(5, 20), shots=(1, 5, 10, 20), tasks=10, steps=100,
                 ancestry_epochs=20, pairs=((5, 1), (5, 5), (5, 10), (5, 20), (20, 5)),
                 options={"scripts": PILOT_SCRIPTS}),
            Data("fashion_mnist", ways=(4,), shots=(10, 50, 200), tasks=5, steps=200,
                 ancestry_epochs=3, flip=True, val_fraction=0.25),
        ),
        ancestries={
            "vit": {"preset": "vit_tiny", "data": ["glyphs"],
                    "methods": ["scratch", "random", "front", "auto"]},
            "cnn": {"preset": "vgg_iso",
                    "methods": ["scratch", "random", "front", "auto", "heur"]},
        },
        methods=("scratch", "random", "front", "auto", "heur"),
        sensitivity={"data": "glyphs", "ways": 5, "shots": 5, "tasks": 3,
                     "methods": ("scratch", "auto")},
        grid={"learning_rate": (1e-4, 1e-3, 3e-3), "batch_size": (16, 64)},
    ),
    # The Learngene family side by side (about 80 minutes on 2 CPU cores with
    # TensorFlow): the full profile's glyph data and its 20-epoch ancestries (the same
    # recipe, so a shared --cache trains them once), 5-way K = 1 and 5, 10 tasks, every
    # condensing method of the library against scratch, front-k and random chains, each
    # descendant as deep as scratch's (k + n_fresh units). It decides the default Auto
    # Learngene variant (docs/family.md).
    "family": Profile(
        name="family",
        data=(Data("glyphs", ways=(5,), shots=(1, 5), tasks=10, steps=100, ancestry_epochs=20,
                   options={"scripts": PILOT_SCRIPTS}),),
        ancestries={
            "vit": {"preset": "vit_tiny",  # heur on the CNN only, as in the full profile
                    "methods": ["scratch", "random", "front", "auto", "auto_distill", "tleg",
                                "sws"]},
            "cnn": {"preset": "vgg_iso"},
        },
        methods=("scratch", "random", "front", "auto", "auto_distill", "tleg", "sws", "heur"),
        sensitivity={},
        transfer_shots=(1, 5),
    ),
    # Descendants that start from what they inherit (issue 21), on the full profile's
    # data, ancestries and learngenes (the same recipes: give it full's --cache, e.g.
    # docs/results/full-v2/cache, and nothing is trained or condensed again). The paper's
    # inheritance (scratch, front, auto) against recipes <method>+<parts> (the runner's
    # `Recipe`): identity (new units start as the identity), head (batch norms aligned and
    # the head fitted by logistic regression before training), gentle (inherited layers at
    # 0.1x the learning rate, no warm-up). Every run is also evaluated at step 0, before
    # training. Cut to about 2 hours on 2 idle CPU cores (0.1 s per step; measured: 13 to
    # 17 s a glyph run, 42 s a Fashion-MNIST run of 200 steps, most of it evaluating its
    # 4,000 held-out images 13 times): 5 glyph tasks per (N, K) instead of 10 (the same
    # first 5 episodes as full), 2 Fashion-MNIST tasks, no sensitivity grid (its 72 runs,
    # about 20 minutes, did not fit) and no cost figures (cost_steps=0: they are full's).
    # The focus is the recipe with every part; docs/results/headstart/RULE.md names the
    # recommended one.
    "headstart": Profile(
        name="headstart",
        data=(
            Data("glyphs", ways=(5, 20), shots=(1, 5, 10, 20), tasks=5, steps=100,
                 checkpoints=(0,) + log_checkpoints(100),
                 ancestry_epochs=20, pairs=((5, 1), (5, 5), (5, 10), (5, 20), (20, 5)),
                 options={"scripts": PILOT_SCRIPTS}),
            Data("fashion_mnist", ways=(4,), shots=(10, 50, 200), tasks=2, steps=200,
                 checkpoints=(0,) + log_checkpoints(200),
                 ancestry_epochs=3, flip=True, val_fraction=0.25),
        ),
        ancestries={"vit": {"preset": "vit_tiny", "data": ["glyphs"]},
                    "cnn": {"preset": "vgg_iso"}},
        methods=HEADSTART_ROWS,
        focus="auto+identity+head+gentle",
        sensitivity={},
        cost_steps=0,
    ),
    # The sensitivity grid the headstart profile left out (target 5 of
    # docs/results/headstart/RULE.md, fixed before either run): its focus recipe and
    # scratch on the lr x batch-size grid, glyphs 5-way K = 5, the first 3 episodes,
    # both architectures, on full's cache (about 25 minutes on 2 idle CPU cores).
    "headstart-grid": Profile(
        name="headstart-grid",
        data=(Data("glyphs", ways=(5,), shots=(5,), tasks=3, steps=100,
                   checkpoints=(0,) + log_checkpoints(100), ancestry_epochs=20,
                   options={"scripts": PILOT_SCRIPTS}),),
        ancestries={"vit": {"preset": "vit_tiny"}, "cnn": {"preset": "vgg_iso"}},
        methods=("scratch", "auto+identity+head+gentle"),
        focus="auto+identity+head+gentle",
        sensitivity={"data": "glyphs", "ways": 5, "shots": 5, "tasks": 3,
                     "methods": ("scratch", "auto+identity+head+gentle")},
        grid={"learning_rate": (1e-4, 1e-3, 3e-3), "batch_size": (16, 64)},
        probes=False,
        cost_steps=0,
    ),
    # The same command on a GPU: every split, 5- and 20-way at every K, 20
    # tasks, every method on both architectures, the full grid, and CIFAR-FS
    # where CIFAR-100 is in the Keras cache (add it with --methods/--profile
    # in Python: `Data("cifar_fs", ...)`).
    "gpu": Profile(
        name="gpu",
        data=(
            Data("glyphs", splits=(0, 1, 2), ways=(5, 20), shots=(1, 5, 10, 20), tasks=20,
                 steps=1000, ancestry_epochs=10),
            Data("fashion_mnist", ways=(4,), shots=(10, 50, 200, 1000), tasks=10, steps=1000,
                 ancestry_epochs=10, flip=True, val_fraction=0.25),
        ),
        ancestries={"vit": {"preset": "vit_tiny"}, "cnn": {"preset": "vgg_iso"}},
        condense_seeds=(0, 1, 2),
        sensitivity={"data": "glyphs", "ways": 5, "shots": 5, "tasks": 10,
                     "methods": ("scratch", "auto")},
        transfer_shots=(1, 5, 20),
    ),
}


def with_methods(profile, methods):
    """`profile` comparing `methods` instead (`klg bench --methods`); the
    sensitivity grid keeps those of its methods that remain."""
    methods = tuple(methods)
    s = dict(profile.sensitivity or {})
    if s:
        s["methods"] = tuple(m for m in s.get("methods", ()) if m in methods)
    return dataclasses.replace(profile, methods=methods, sensitivity=s)


def get_profile(profile):
    """A `Profile` from its name (or the profile itself)."""
    if isinstance(profile, Profile):
        return profile
    if profile not in PROFILES:
        raise ValueError(
            f"Unknown benchmark profile {profile!r}; available: {', '.join(PROFILES)}."
        )
    return PROFILES[profile]
