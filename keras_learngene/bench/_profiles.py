"""Benchmark profiles: what `klg bench --profile NAME` trains and measures.

A profile fixes everything a result depends on (data, ancestries, methods,
shots, seeds, the step budget and its checkpoints, the hyperparameter grid);
the output folder remembers its profile, so a resumed run cannot mix two.
"""

import dataclasses

# the benchmark's own baselines; every other entry of `Profile.methods` is a
# registered condensing method (`klg plugins --all`), plugins' included
BASELINES = ("scratch", "ancestry")
METHODS = ("scratch", "front", "back", "auto", "heur", "weight_selection", "ancestry")


@dataclasses.dataclass(frozen=True)
class Profile:
    """One benchmark configuration.

    Attributes:
        name: profile name.
        dataset: `"fashion_mnist"` (the full data set) or `"embedded"` (the
            shipped subset).
        ancestries: `{arch: spec}`; a spec has `preset` and either
            `"shipped": True` (the package's trained ancestry) or `epochs` of
            training on the base classes, and optional builder `overrides`,
            `shots` (this architecture's K, default: the profile's) and
            `sensitivity` (False: no grid runs for this architecture).
        methods: initialisations compared: `"scratch"` (random), `"ancestry"`
            (every unit, fine-tuned) and registered condensing methods.
        k: ancestry units in each learngene.
        n_fresh: fresh units stacked on the learngene in every descendant.
        shots: K, training images per novel class.
        seeds: seeds of every sampled task and every initialisation.
        steps: optimizer steps of every run (the equal budget).
        checkpoints: steps at which the test accuracy is measured.
        default: the `learning_rate` and `batch_size` of the main runs.
        grid: the `learning_rate` x `batch_size` grid of the sensitivity runs.
        sensitivity_shots: K of the sensitivity runs.
        sensitivity_methods: methods run over the whole grid.
        probe_size: base-class images given to condensing.
        cost_steps: steps timed for the ancestry-epoch and overhead figures.
    """

    name: str
    dataset: str
    ancestries: dict
    methods: tuple = METHODS
    k: int = 3
    n_fresh: int = 3
    shots: tuple = (10, 50, 200, 1000)
    seeds: tuple = (0, 1, 2)
    steps: int = 120
    checkpoints: tuple = (10, 20, 40, 80, 120)
    default: dict = dataclasses.field(
        default_factory=lambda: {"learning_rate": 1e-3, "batch_size": 64})
    grid: dict = dataclasses.field(
        default_factory=lambda: {"learning_rate": (1e-4, 3e-4, 1e-3, 3e-3),
                                 "batch_size": (16, 64)})
    sensitivity_shots: int = 200
    sensitivity_methods: tuple = ("scratch", "auto")
    probe_size: int = 3000
    cost_steps: int = 60

    def to_json(self):
        """The profile as plain JSON data (tuples become lists)."""
        return _plain(dataclasses.asdict(self))


def _plain(value):
    if isinstance(value, dict):
        return {key: _plain(v) for key, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


PROFILES = {
    # Minutes on 2 CPU cores: tiny ancestries trained for one epoch on the
    # shipped subset. A smoke test of the whole pipeline; its numbers mean little.
    "quick": Profile(
        name="quick",
        dataset="embedded",
        ancestries={
            "vit": {"preset": "vit_tiny", "epochs": 1,
                    "overrides": {"patch_size": 7, "num_layers": 4, "hidden_dim": 16,
                                  "num_heads": 2, "mlp_dim": 32}},
            "cnn": {"preset": "vgg_iso", "epochs": 1,
                    "overrides": {"filters": [8, 8, 8, 8], "stem_filters": 8}},
        },
        k=2,
        n_fresh=1,
        shots=(10, 50),
        seeds=(0,),
        steps=12,
        checkpoints=(2, 6, 12),
        grid={"learning_rate": (1e-3, 3e-3), "batch_size": (16,)},
        sensitivity_shots=10,
        default={"learning_rate": 1e-3, "batch_size": 16},
        probe_size=256,
        cost_steps=5,
    ),
    # The protocol of shared/BENCHMARK.md on the full Fashion-MNIST data: the
    # shipped ViT ancestry and a VGG-style CNN with units of one shape, so
    # every method initialises the same descendant architecture.
    "full": Profile(
        name="full",
        dataset="fashion_mnist",
        ancestries={
            "vit": {"preset": "vit_tiny", "shipped": True},
            "cnn": {"preset": "vgg_iso", "epochs": 4},
        },
        steps=100,
        checkpoints=(10, 16, 33, 66, 100),
    ),
}


def get_profile(profile):
    """A `Profile` from its name (or the profile itself)."""
    if isinstance(profile, Profile):
        return profile
    if profile not in PROFILES:
        raise ValueError(
            f"Unknown benchmark profile {profile!r}; available: {', '.join(PROFILES)}."
        )
    return PROFILES[profile]
