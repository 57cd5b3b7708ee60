"""The real command line, in a subprocess, on tiny generated data."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from mnistbench import results


def mnistbench(*args, env_extra=None, cwd=None):
    env = {**os.environ, "MPLBACKEND": "Agg", **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "mnistbench", *args], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=300)


def test_run_writes_valid_result_files(tiny_root, tmp_path):
    out = tmp_path / "out"
    proc = mnistbench("run", "--epochs", "2", "--hidden", "32,16", "--data-root", str(tiny_root), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    files = sorted((out / "runs").glob("*.json"))
    assert len(files) == 10  # logistic x 4, softmax x 4, mlp x 2
    for path in files:
        record = results.read_run(path)
        assert record["status"] == "ok"
        for key in ("run_id", "config", "test_acc", "test_loss", "best_val_acc", "best_epoch", "epochs_run",
                    "train_seconds", "train_samples_per_s", "history", "per_class_acc", "confusion", "env"):
            assert key in record, key
        assert set(record["history"][0]) >= {"epoch", "train_loss", "train_acc", "val_loss", "val_acc",
                                             "train_seconds"}
        assert {"torch", "python", "device_name", "threads", "cpu_model"} <= set(record["env"])
    frame = results.to_frame(out)
    assert len(frame) == 10 and set(frame["impl"]) == {"manual", "handgrad", "builtin", "sklearn"}
    # progress and the closing table
    assert "epoch   2" in proc.stdout and "samples/s" in proc.stdout
    assert "best val acc" in proc.stdout.splitlines()[-14]


def test_run_one_pair_with_options(tiny_root, tmp_path):
    proc = mnistbench("run", "--family", "mlp", "--impl", "manual", "--epochs", "3", "--lr", "0.05",
                      "--batch-size", "32", "--hidden", "16", "--seed", "7", "--patience", "1", "--quiet",
                      "--data-root", str(tiny_root), "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    (path,) = (tmp_path / "runs").glob("*.json")
    config = json.loads(path.read_text())["config"]
    assert (config["lr"], config["batch_size"], config["hidden"], config["seed"], config["patience"]) == \
        (0.05, 32, [16], 7, 1)
    assert "epoch   1" not in proc.stdout  # --quiet


@pytest.mark.parametrize(
    "args, message",
    [
        (["--family", "svm"], "unknown family 'svm'"),
        (["--family", "mlp", "--impl", "sklearn"], "unknown implementation 'sklearn'"),
        (["--lr", "0"], "learning rate must be"),
        (["--lr", "-1"], "learning rate must be"),
        (["--lr", "nan"], "learning rate must be"),
        (["--batch-size", "0"], "batch size must be >= 1"),
        (["--epochs", "0"], "epochs must be >= 1"),
        (["--lr", "abc"], "--lr"),
        (["--data-root", "/no/such/folder"], "does not exist"),
        (["--device", "tpu"], "unknown device"),
    ],
)
def test_user_mistakes_exit_2_with_one_line(tiny_root, tmp_path, args, message):
    argv = ["run", "--family", "logistic", "--epochs", "1", "--out", str(tmp_path / "out")]
    if "--data-root" not in args:
        argv += ["--data-root", str(tiny_root)]
    proc = mnistbench(*argv, *args)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists()  # nothing written


def test_run_in_a_clean_clone_leaves_git_status_clean(tiny_root, tmp_path):
    """`mnistbench run` with no --out writes where git does not look (mnistbench-out/, ignored), never into
    the committed reference results."""
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if not os.path.isdir(os.path.join(repo, ".git")):
        pytest.skip("not a git checkout")
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", "--depth", "1", f"file://{repo}", str(clone)], check=True,
                   capture_output=True, timeout=120)
    env = {k: v for k, v in os.environ.items() if k != "MNISTBENCH_OUT"}
    proc = subprocess.run([sys.executable, "-m", "mnistbench", "run", "--family", "softmax", "--impl", "handgrad",
                           "--epochs", "1", "--quiet", "--data-root", str(tiny_root)], capture_output=True,
                          text=True, env={**env, "MPLBACKEND": "Agg"}, cwd=clone, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    assert list((clone / "mnistbench-out" / "runs").glob("*.json")), "the run was not saved"
    status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=clone,
                            capture_output=True, text=True, check=True).stdout
    assert status == "", status
