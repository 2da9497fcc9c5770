"""Data parallelism through Keras' distribution API: training throughput (img/s)
of the `vit_tiny` preset on 1 and 2 devices (JAX).

Without accelerators, JAX simulates the devices on the CPU
(`XLA_FLAGS=--xla_force_host_platform_device_count=N`, set before JAX starts,
so each setting runs in its own process, one after the other, in the same
run). Simulated devices share the same CPU cores, so expect no speed-up on a
CPU: the table measures what splitting the batch costs. On GPUs the same
command (without the XLA flag) splits each batch over real devices.

Each setting trains for 2 epochs on the same Fashion-MNIST images with the
library's recipe (`keras_learngene.training.train`); epoch 1 includes
compilation, epoch 2 is the steady state.

    python benchmarks/data_parallel.py [--images 9600] [--batch-size 64]
        [--precision float32] [--simulate 2]
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
from keras_learngene import distribute
images, batch_size, kind, precision = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
task = klg.datasets.load_task("fashion_mnist", classes="all")
x, y = task.x_train[:images], task.y_train[:images]

with distribute.scope(None if kind == "none" else kind, precision) as dist:
    model = klg.models.build_preset("vit_tiny", task.input_shape, task.num_classes)
    result = klg.training.train(model, x, y, epochs=2, batch_size=batch_size, verbose=0)
steps = -(-len(x) // batch_size)
print(json.dumps({"devices": result["devices"], "distribution": kind, "precision": precision,
                  "steps": 2 * steps, "images": len(x), "loss": result["history"]["loss"][-1],
                  "epoch1_img_s": len(x) / result["epoch_seconds"][0],
                  "epoch2_img_s": len(x) / result["epoch_seconds"][1]}), flush=True)
"""


def run(devices, kind, args):
    env = {**os.environ, "KERAS_BACKEND": "jax"}
    if args.simulate:
        env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") +
                            f" --xla_force_host_platform_device_count={devices}").strip()
    start = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(args.images), str(args.batch_size), kind,
         args.precision], env=env, capture_output=True, text=True)
    if out.returncode:
        print(out.stderr[-3000:], file=sys.stderr)
        raise SystemExit(f"{devices} devices, {kind} failed")
    row = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")][-1]
    print(f"{devices} device(s), {kind}: {time.perf_counter() - start:.0f} s", file=sys.stderr)
    return row


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=9600)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--precision", default="float32",
                        choices=["float32", "mixed_float16", "mixed_bfloat16"])
    parser.add_argument("--simulate", type=int, default=1,
                        help="1: simulate the devices on the CPU (XLA_FLAGS); 0: real devices")
    args = parser.parse_args()
    rows = [run(1, "none", args), run(1, "data_parallel", args), run(2, "data_parallel", args)]
    base = rows[0]["epoch2_img_s"]
    kind = "simulated CPU" if args.simulate else "real"
    print(f"`vit_tiny` on {args.images} Fashion-MNIST images, batch {args.batch_size} "
          f"({rows[0]['steps']} steps in 2 epochs), {args.precision}, JAX, {kind} devices, "
          f"{os.cpu_count()} CPU cores\n")
    print("| devices | distribution | epoch 1 img/s (with compile) | epoch 2 img/s "
          "| vs 1 device | final loss |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(f"| {', '.join(r['devices'])} | {r['distribution']} | {r['epoch1_img_s']:.0f} | "
              f"{r['epoch2_img_s']:.0f} | {r['epoch2_img_s'] / base:.2f}x | {r['loss']:.4f} |")


if __name__ == "__main__":
    main()
