"""The GPU check's driver (`benchmarks/gpu_check.py`, run by `scripts/gpu_check.sh`),
on the CPU: one tiny leg writes every figure, and the summary compares a leg with
itself (as a GPU leg would be with its CPU leg) and prints the table."""

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DRIVER = os.path.join(ROOT, "benchmarks", "gpu_check.py")


# backend-independent bookkeeping: once, on the pass whose tiny runs need no compiling
@pytest.mark.once(backend="torch")
def test_a_cpu_leg_writes_its_figures_and_the_summary_compares_legs(tmp_path):
    legs = tmp_path / "legs"
    legs.mkdir()
    out = legs / "torch_cpu.json"
    run = subprocess.run(
        [sys.executable, DRIVER, "--backend", "torch", "--device", "cpu", "--seconds", "5",
         "--agree-images", "128", "--agree-epochs", "2", "--out", str(out)],
        capture_output=True, text=True, timeout=240)
    assert run.returncode == 0, run.stderr[-3000:]
    leg = json.loads(out.read_text())
    assert leg["status"] == "ok" and leg["device"] == "cpu" and not leg["on_gpu"]
    assert {"versions", "model", "logits", "agreement_run", "throughput",
            "phase_seconds"} <= set(leg)
    assert len(leg["logits"]) == 16 and len(leg["logits"][0]) == leg["model"]["num_classes"]
    agree = leg["agreement_run"]
    assert agree["steps"] == 4 and len(agree["losses"]) == 2
    assert 0 < agree["final_loss"] < 10 and 0 <= agree["test_accuracy"] <= 1
    assert leg["throughput"]["images_per_second"] > 0
    assert leg["throughput"]["compile_seconds"] >= 0

    # the same figures as a "GPU" leg: they agree exactly
    gpu = dict(leg, device="gpu", dry_run=True)
    (legs / "torch_gpu.json").write_text(json.dumps(gpu))
    (legs / "jax_gpu.json").write_text(json.dumps(
        {"backend": "jax", "device": "gpu", "status": "skipped", "error": "skipped: no jax"}))
    summary = subprocess.run([sys.executable, DRIVER, "--summary", str(tmp_path)],
                             capture_output=True, text=True, timeout=60)
    assert summary.returncode == 0, summary.stdout + summary.stderr
    assert "| torch | gpu (dry run: cpu) |" in summary.stdout
    assert "| OK | 1.0x |" in summary.stdout and "skipped: no jax" in summary.stdout
    figures = json.loads((tmp_path / "gpu_check.json").read_text())
    assert figures["agreement"]["torch"]["ok"] and figures["exit_code"] == 0

    # a GPU whose loss is 10% off fails the check (exit code 1)
    gpu["agreement_run"] = dict(agree, final_loss=agree["final_loss"] * 1.1)
    (legs / "torch_gpu.json").write_text(json.dumps(gpu))
    summary = subprocess.run([sys.executable, DRIVER, "--summary", str(tmp_path)],
                             capture_output=True, text=True, timeout=60)
    assert summary.returncode == 1 and "| FAIL |" in summary.stdout
