"""The command line on tiny generated data: in this process through cli.main, and in a subprocess where
the real process in a fresh clone is the point."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from mnistbench import cli, results


def mnistbench(capsys, *args):
    """cli.main in this process: (exit status, stdout, stderr)."""
    code = cli.main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_run_writes_valid_result_files(tiny_root, tmp_path, capsys):
    out = tmp_path / "out"
    code, stdout, stderr = mnistbench(capsys, "run", "--epochs", "2", "--hidden", "32,16", "--data-root", tiny_root,
                                      "--out", out)
    assert code == 0, stderr
    files = sorted((out / "runs").glob("*.json"))
    assert len(files) == 10  # logistic x 4, softmax x 4, mlp x 2
    for path in files:
        raw = json.loads(path.read_text())
        assert raw["schema"] == 2
        for key in ("run_id", "config", "status", "test_acc", "test_loss", "best_epoch", "history", "confusion",
                    "split_sizes", "noise", "env"):
            assert key in raw, key
        result = results.read_result(path)
        assert result.status == "ok" and path.stem == result.run_id
        row = result.to_row()
        for key in ("best_val_acc", "epochs_run", "train_seconds", "train_samples_per_s", "per_class_acc"):
            assert key in row, key
        assert set(vars(result.history[0])) >= {"epoch", "train_loss", "train_acc", "val_loss", "val_acc",
                                                "train_seconds"}
        assert {"torch", "python", "device_name", "threads", "cpu_model"} <= set(result.env)
    frame = results.to_frame(out)
    assert len(frame) == 10 and set(frame["impl"]) == {"manual", "handgrad", "builtin", "sklearn"}
    # progress and the closing table
    assert "epoch   2" in stdout and "samples/s" in stdout
    assert "[1/10] logistic/manual " in stdout and "[10/10] ok: test acc " in stdout
    assert "best val acc" in stdout.splitlines()[-14]
    assert not list((out / "runs" / ".claims").glob("*.json"))  # every claim released at the end


def test_run_one_pair_with_options(tiny_root, tmp_path, capsys):
    code, stdout, stderr = mnistbench(capsys, "run", "--family", "mlp", "--impl", "manual", "--epochs", "3",
                                      "--lr", "0.05", "--batch-size", "32", "--hidden", "16", "--seed", "7",
                                      "--patience", "1", "--quiet", "--data-root", tiny_root, "--out", tmp_path)
    assert code == 0, stderr
    (path,) = (tmp_path / "runs").glob("*.json")
    config = json.loads(path.read_text())["config"]
    assert (config["lr"], config["batch_size"], config["hidden"], config["seed"], config["patience"]) == \
        (0.05, 32, [16], 7, 1)
    assert "epoch   1" not in stdout  # --quiet
    assert "[1/1] ok: test acc " in stdout


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
        # run takes one value per option; a list is sweep's
        (["--lr", "0.1,0.2"], "argument --lr: invalid float value: '0.1,0.2'"),
        (["--data-root", "/no/such/folder"], "does not exist"),
        (["--device", "tpu"], "unknown device"),
    ],
)
def test_user_mistakes_exit_2_with_one_line(tiny_root, tmp_path, capsys, args, message):
    argv = ["run", "--family", "logistic", "--epochs", "1", "--out", str(tmp_path / "out")]
    if "--data-root" not in args:
        argv += ["--data-root", str(tiny_root)]
    code, _, stderr = mnistbench(capsys, *argv, *args)
    assert code == 2
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], stderr
    assert "Traceback" not in stderr
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
