"""Training throughput (img/s) of every ancestry preset on every backend.

Each backend runs in its own process (a process has one Keras backend), one
after the other on the same machine. Each preset trains for 2 epochs on the
same real Fashion-MNIST base-class images with the library's recipe; the
first epoch includes tracing/compilation, the second is the steady state.

    python benchmarks/train_throughput.py [--images 4096] [--backends tensorflow,jax,torch]
"""

import argparse
import json
import os
import subprocess
import sys
import time

CHILD = r"""
import json, sys, time, keras
import keras_learngene as klg
images, presets = int(sys.argv[1]), sys.argv[2].split(",")
task = klg.datasets.load_task("fashion_mnist", classes="base")
x, y = task.x_train[:images], task.y_train[:images]

for preset in presets:
    model = klg.models.build_preset(preset, task.input_shape, task.num_classes)
    times = klg.training.train(model, x, y, epochs=2, batch_size=64,
                               verbose=0)["epoch_seconds"]
    print(json.dumps({"backend": keras.backend.backend(), "preset": preset,
                      "params": model.count_params(), "images": len(x),
                      "epoch1_img_s": len(x) / times[0],
                      "epoch2_img_s": len(x) / times[1]}), flush=True)
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=4096)
    parser.add_argument("--backends", default="tensorflow,jax,torch")
    parser.add_argument("--presets", default="vit_tiny,vit_small,vgg_small,resnet_small")
    args = parser.parse_args()
    rows = []
    for backend in args.backends.split(","):
        start = time.perf_counter()
        out = subprocess.run(
            [sys.executable, "-c", CHILD, str(args.images), args.presets],
            env={**os.environ, "KERAS_BACKEND": backend}, capture_output=True, text=True,
        )
        if out.returncode:
            print(out.stderr[-2000:], file=sys.stderr)
            raise SystemExit(f"{backend} failed")
        rows += [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
        print(f"{backend}: {time.perf_counter() - start:.0f} s", file=sys.stderr)
    print(f"One training epoch of {args.images} Fashion-MNIST images (28x28x1), batch 64, "
          f"{os.cpu_count()} CPU cores\n")
    print("| preset | params | backend | epoch 1 img/s (with compile) | epoch 2 img/s |")
    print("| --- | ---: | --- | ---: | ---: |")
    for r in rows:
        print(f"| {r['preset']} | {r['params']:,} | {r['backend']} | {r['epoch1_img_s']:.0f} "
              f"| {r['epoch2_img_s']:.0f} |")


if __name__ == "__main__":
    main()
