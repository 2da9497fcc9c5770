"""Issue 27: PyTorch's oneDNN convolutions corrupted the heap on the torch pass.

On an AVX2 CPU with one intra-op thread (what tests/conftest.py sets), the
weight gradient of the tiny ResNet's 1x1 stride-2 shortcut (4 input channels,
channels-last) ran oneDNN's `jit_1x1:avx2` kernel, which corrupts the heap:
the pass aborted (`corrupted size vs. prev_size`). tests/conftest.py disables
`torch.backends.mkldnn` there; scripts/torch_heap_repro.py reproduces it
without Keras. This trains the tiny ResNet and VGG in a fresh interpreter under
the torch pass's configuration (tests/conftest.py imported), so that a native
crash fails this test with its exit code instead of killing a worker.
"""

import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.once(backend="torch")

HERE = os.path.dirname(os.path.abspath(__file__))

SCRIPT = """
import sys
sys.path.insert(0, sys.argv[1])
import conftest  # the torch pass's setup: one thread, oneDNN off
import keras, torch
assert keras.backend.backend() == "torch" and torch.get_num_threads() == 1
assert not torch.backends.mkldnn.enabled
x, y = conftest.tiny_data()
for name in ("resnet", "vgg"):
    keras.utils.set_random_seed(0)
    for _ in range(3):
        conftest.train_briefly(conftest.TINY_BUILDERS[name](), x, y, epochs=2)
print("trained")
"""


def test_tiny_cnns_train_on_torch_with_one_thread():
    env = {**os.environ, "KERAS_BACKEND": "torch", "KLG_LOAD_PLUGINS": ""}
    proc = subprocess.run([sys.executable, "-c", SCRIPT, HERE], env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, (
        f"exit code {proc.returncode} (negative: killed by that signal; 134/-6 abort, "
        f"139/-11 segfault)\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    assert "trained" in proc.stdout
