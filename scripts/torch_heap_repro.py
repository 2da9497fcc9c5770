"""PyTorch-only reproduction of issue 27: native heap corruption on CPU.

The weight gradient of a 1x1, stride-2 convolution in channels-last layout
with fewer than 8 input channels (here 4 -> 8 channels on 8x8 images, a batch
of 32: the shortcut of keras-learngene's tiny test ResNet; Keras' torch backend
runs convolutions channels-last) corrupts the heap when PyTorch runs it with
oneDNN on one intra-op thread. oneDNN picks its `jit_1x1:avx2`
backward_weights kernel (see `ONEDNN_VERBOSE=1`); glibc then aborts with
`corrupted size vs. prev_size`, `double free or corruption (out)`,
`munmap_chunk(): invalid pointer` or a segfault, within a few iterations.

Seen with torch 2.13.0+cpu (oneDNN 3.12.0, OpenMP), Python 3.11, on an
"AMD EPYC" VM with 2 cores (AVX2, no AVX-512). Fails every run there:

    python scripts/torch_heap_repro.py            # aborts (exit 134 / 139)
    python scripts/torch_heap_repro.py --threads 2  # passes at this shape, but
    python scripts/torch_heap_repro.py --threads 2 --shape 32,4,16,8  # hangs or crashes
    python scripts/torch_heap_repro.py --no-mkldnn  # passes: the workaround
    ONEDNN_MAX_CPU_ISA=SSE41 python scripts/torch_heap_repro.py   # passes

It also passes with contiguous (channels-first) tensors, with stride 1, with
a 3x3 kernel, and with 8 or 16 input channels; the input gradient and the
forward pass alone are fine. `ATEN_CPU_CAPABILITY=default` does not help
(oneDNN dispatches on its own). tests/conftest.py disables
`torch.backends.mkldnn` on the torch pass for this reason.
"""

import argparse

import torch
import torch.nn.functional as F


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-mkldnn", action="store_true")
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--shape", default="32,4,8,8", help="batch,in_channels,size,out_channels")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.no_mkldnn:
        torch.backends.mkldnn.enabled = False
    batch, cin, size, cout = (int(v) for v in args.shape.split(","))
    print(f"torch {torch.__version__}, cpu capability {torch.backends.cpu.get_cpu_capability()}, "
          f"threads {torch.get_num_threads()}, mkldnn {torch.backends.mkldnn.enabled}", flush=True)
    for _ in range(args.steps):
        x = torch.randn(batch, cin, size, size).contiguous(memory_format=torch.channels_last)
        w = torch.randn(cout, cin, 1, 1).contiguous(memory_format=torch.channels_last)
        w.requires_grad_(True)
        F.conv2d(x, w, stride=2).sum().backward()  # the weight gradient corrupts the heap
    print("OK: no crash", flush=True)


if __name__ == "__main__":
    main()
