"""The pilot of benchmark protocol v2 (docs/benchmark.md): the `pilot` profile.

    KERAS_BACKEND=tensorflow python docs/results/pilot/run_pilot.py

Resumable like `klg bench`: run it again to continue; the trained ancestries
and learngenes are cached in /tmp/klg-pilot-cache (not committed).
"""

import os

from keras_learngene import bench

if __name__ == "__main__":
    here = os.path.dirname(os.path.abspath(__file__))
    bench.run_bench("pilot", here, cache="/tmp/klg-pilot-cache")
