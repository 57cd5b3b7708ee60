"""Reliability: bad input, signals, concurrent writers and divergence, through the real CLI: in this
process (cli.main), and in subprocesses where the real process is the point (signals, two writers)."""
from __future__ import annotations

import contextlib
import hashlib
import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from conftest import write_dataset, write_idx

from mnistbench import claims, cli, results

SWEEP = ["sweep", "--family", "mlp", "--impl", "manual", "--hidden", "16", "--epochs", "4", "--quiet",
         "--seed", ",".join(str(s) for s in range(10))]


def command(*args):
    return [sys.executable, "-m", "mnistbench", *args]


def run_cli(*args):
    """The command line in this process: its exit status and what it printed, as a finished process."""
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = cli.main([str(a) for a in args])
    return SimpleNamespace(returncode=code, stdout=stdout.getvalue(), stderr=stderr.getvalue())


def snapshot(folder: Path) -> dict:
    """Every file under folder with a hash of its bytes: 'nothing created or changed' compares two of these."""
    if not folder.exists():
        return {}
    return {str(p.relative_to(folder)): hashlib.sha1(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def existing_out(tmp_path_factory, tiny_root):
    """An output folder that already holds one finished run: bad input must leave it untouched."""
    out = tmp_path_factory.mktemp("existing")
    proc = run_cli("run", "--family", "logistic", "--impl", "manual", "--epochs", "1", "--quiet",
                   "--data-root", str(tiny_root), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    return out


BAD_OPTIONS = [
    (["--family", "tree"], "unknown family"),
    (["--impl", "magic"], "unknown implementation"),
    (["--dataset", "cifar"], "unknown dataset"),
    (["--protocol", "kfold"], "unknown protocol"),
    (["--device", "tpu"], "unknown device"),
    (["--lr", "0"], "learning rate"),
    (["--lr", "-0.5"], "learning rate"),
    (["--lr", "nan"], "learning rate"),
    (["--lr", "inf"], "learning rate"),
    (["--batch-size", "0"], "batch size"),
    (["--epochs", "0"], "epochs"),
    (["--patience", "-1"], "patience"),
    (["--family", "mlp", "--hidden", ""], "--hidden"),
    (["--family", "mlp", "--hidden", "0,128"], "--hidden"),
    (["--family", "softmax", "--classes", "3"], "at least two classes"),
    (["--family", "softmax", "--classes", "0,12"], "digits 0-9"),
    (["--family", "logistic", "--classes", "0,1,2"], "exactly 2 classes"),
    (["--threads", "0"], "threads"),
    (["--no-such-option"], "unrecognized arguments"),
    # numbers that used to become failed runs or tracebacks: refused up front
    (["--seed", "-1"], "seed must be between 0 and 2**32-1"),
    (["--seed", "4294967296"], "seed must be between 0 and 2**32-1"),
    (["--threads", "100000"], "threads must be between 1 and"),
    (["--lr", "1e308"], "cannot be held by a float32"),
    (["--lr", "1e-50"], "cannot be held by a float32"),
    (["--family", "mlp", "--hidden", "2000000000"], "the weights alone would take"),
    (["--family", "mlp", "--patience", "0"], "patience must be >= 1"),
]


@pytest.mark.parametrize("args, message", BAD_OPTIONS, ids=[" ".join(a) for a, _ in BAD_OPTIONS])
def test_bad_option_exits_2_one_line_nothing_written(existing_out, tiny_root, args, message):
    before = snapshot(existing_out)
    argv = ["run", "--family", "logistic", "--epochs", "1", "--data-root", str(tiny_root), "--out",
            str(existing_out)]
    proc = run_cli(*argv, *args)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], proc.stderr
    assert snapshot(existing_out) == before


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present")
def test_cuda_without_gpu(existing_out, tiny_root):
    before = snapshot(existing_out)
    proc = run_cli("run", "--family", "logistic", "--device", "cuda", "--data-root", str(tiny_root), "--out",
                   str(existing_out))
    assert proc.returncode == 2 and "no CUDA device" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and snapshot(existing_out) == before


def broken_copy(tmp_path, tiny_root, damage) -> Path:
    root = write_dataset(tmp_path / "data", 100, 50)
    damage(root / "MNIST" / "raw")
    return root


DAMAGES = {
    "truncated": (lambda raw: (raw / "train-images-idx3-ubyte").write_bytes(
        (raw / "train-images-idx3-ubyte").read_bytes()[:5000]), "train-images-idx3-ubyte is truncated"),
    "wrong-magic": (lambda raw: (raw / "t10k-labels-idx1-ubyte").write_bytes(b"PK\x03\x04" + bytes(60)),
                    "t10k-labels-idx1-ubyte is not an IDX file"),
    "count-mismatch": (lambda raw: write_idx(raw / "train-labels-idx1-ubyte", np.zeros(90, np.uint8)),
                       "train-labels-idx1-ubyte has 90 labels"),
    "missing": (lambda raw: (raw / "t10k-images-idx3-ubyte").unlink(), "missing t10k-images-idx3-ubyte"),
}


@pytest.mark.parametrize("kind", list(DAMAGES))
def test_bad_data_names_the_file(tmp_path, tiny_root, kind):
    damage, message = DAMAGES[kind]
    root = broken_copy(tmp_path, tiny_root, damage)
    out = tmp_path / "out"
    proc = run_cli("run", "--family", "logistic", "--data-root", str(root), "--out", str(out))
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not out.exists()


def test_missing_data_folder_and_unwritable_out(tmp_path, tiny_root):
    proc = run_cli("run", "--data-root", str(tmp_path / "nowhere"), "--out", str(tmp_path / "out"))
    assert proc.returncode == 2 and "does not exist" in proc.stderr and not (tmp_path / "out").exists()
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    proc = run_cli("run", "--family", "logistic", "--data-root", str(tiny_root), "--out", str(blocker / "out"))
    assert proc.returncode == 2 and "not writable" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and blocker.read_text() == "not a folder"


def finished(out: Path) -> list:
    """Every result file under out/runs, read and checked (a file that does not parse fails the test)."""
    return [results.read_result(p) for p in sorted((out / "runs").glob("*.json"))]


def wait_for_runs(out: Path, count: int, proc, limit=120.0):
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if len(list((out / "runs").glob("*.json"))) >= count:
            return
        if proc.poll() is not None:
            pytest.fail(f"sweep ended before it could be interrupted: {proc.stderr.read()}")
        time.sleep(0.05)
    pytest.fail("no run finished in time")


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, tiny_root):
    out = tmp_path_factory.mktemp("whole")
    proc = run_cli(*SWEEP, "--data-root", str(tiny_root), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    return finished(out)


def outcome(records) -> dict:
    """What must be the same after an interrupted-and-resumed sweep as after a whole one."""
    return {r.config_key: (r.status, r.test_acc, r.epochs_run) for r in records}


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL], ids=lambda s: s.name)
def test_signal_mid_sweep_then_resume(tmp_path, tiny_root, uninterrupted, sig):
    out = tmp_path / "out"
    # SIGINT restored to its default: a shell's background job (tox started with `&`) would pass it on ignored
    proc = subprocess.Popen(command(*SWEEP, "--data-root", str(tiny_root), "--out", str(out)),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "MPLBACKEND": "Agg"},
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    wait_for_runs(out, 1 + int(np.random.default_rng().integers(0, 6)), proc)  # a random point, 1-6 of 10
    proc.send_signal(sig)
    code = proc.wait(timeout=60)
    assert code != 0
    partial = finished(out)  # every file on disk parses
    left = list((out / "runs" / ".claims").glob("*.json"))
    if sig == signal.SIGKILL:  # no finally ran: its claims stay, stale (their process is gone), for others to take
        assert left and all(claims.holder(path) is None for path in left)
    else:
        assert left == []  # Ctrl-C and SIGTERM release every claim on the way out
    assert 1 <= len(partial) < len(uninterrupted)
    assert all(r.status == "ok" for r in partial)
    resumed = run_cli(*SWEEP, "--resume", "--data-root", str(tiny_root), "--out", str(out))
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.count(": skipped, already done (--resume)") == len(partial)
    assert all(claims.holder(path) is None for path in (out / "runs" / ".claims").glob("*.json"))  # none held
    complete = finished(out)
    assert len(complete) == len(uninterrupted)  # nothing run twice
    assert outcome(complete) == outcome(uninterrupted)  # same configs, same results, bit for bit


@pytest.mark.parametrize("where", ["claims.take", "harness._already_done"])
def test_an_interrupt_between_claiming_and_training_leaves_no_claim(tmp_path, tiny_root, monkeypatch, where):
    """A signal lands just after a claim is taken (in the claim itself, or while the folder is read for a
    finished run of it): the claim is released on the way out all the same."""
    from mnistbench import harness
    from mnistbench.config import for_family

    module, name = where.split(".")
    target = {"claims": claims, "harness": harness}[module]
    original = getattr(target, name)

    def then_interrupted(*args, **kwargs):
        value = original(*args, **kwargs)
        if module == "claims" or value is False:  # after the claim file exists
            signal.raise_signal(signal.SIGTERM)  # turned into a KeyboardInterrupt by execute
        return value

    monkeypatch.setattr(target, name, then_interrupted)
    configs = [for_family("softmax", "manual", epochs=1, seed=seed) for seed in (0, 1)]
    with pytest.raises(KeyboardInterrupt):
        list(harness.execute(configs, tmp_path / "out", data_root=tiny_root))
    assert not list((tmp_path / "out" / "runs" / ".claims").glob("*.json"))


def test_two_processes_writing_one_folder(tmp_path, tiny_root):
    """Two processes on one grid into one folder: each configuration is claimed before it trains, so one
    held by the other process is skipped (and named) rather than trained twice at once; no file is lost
    or overwritten, and the folder reads as one result per configuration."""
    out = tmp_path / "shared-out"
    argv = ["sweep", "--family", "softmax", "--impl", "manual,builtin", "--epochs", "2", "--quiet",
            "--data-root", str(tiny_root), "--out", str(out)]
    procs = [subprocess.Popen(command(*argv, "--seed", seeds), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for seeds in ("0,1,2", "0,1,2")]
    outputs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err for _, err in outputs]
    records = finished(out)
    skipped = sum(stdout.count(": skipped, being trained by process ") + stdout.count(
        ": skipped, trained meanwhile by another command") for stdout, _ in outputs)
    assert len(records) + skipped == 12  # every point of each grid either trained or skipped, by name
    assert len({r.run_id for r in records}) == len(records)  # no file lost or overwritten
    assert all(p.stem == r.run_id for p, r in zip(sorted((out / "runs").glob("*.json")), records))
    assert len({r.config_key for r in records}) == 6  # every point trained, by one process or the other
    assert len(results.to_frame(out)) == 6  # a point trained by both counts once
    assert not list((out / "runs" / ".claims").glob("*.json"))  # both released their claims


def test_divergence_is_recorded_and_the_sweep_goes_on(tmp_path, tiny_root):
    proc = run_cli("sweep", "--family", "mlp", "--impl", "manual,builtin", "--hidden", "16", "--epochs", "5",
                   "--lr", "1e6,0.05", "--quiet", "--data-root", str(tiny_root), "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    by_lr = {}
    for record in finished(tmp_path):
        by_lr.setdefault(record.config.lr, []).append(record)
    assert {r.status for r in by_lr[1e6]} == {"diverged"}
    assert all(r.diverged_epoch == r.epochs_run for r in by_lr[1e6])
    assert {r.status for r in by_lr[0.05]} == {"ok"}
    assert "diverged at epoch" in proc.stdout


def test_same_config_same_metrics_bit_for_bit(tmp_path, tiny_root):
    argv = ["run", "--family", "softmax,mlp", "--impl", "manual,builtin", "--hidden", "16", "--epochs", "2",
            "--quiet", "--data-root", str(tiny_root)]
    for name in ("a", "b"):
        assert run_cli(*argv, "--out", str(tmp_path / name)).returncode == 0

    def metrics(name):
        rows = {}
        for r in finished(tmp_path / name):
            history = [{k: v for k, v in vars(h).items() if "seconds" not in k} for h in r.history]
            rows[r.config_key] = (r.test_acc, r.test_loss, r.confusion, history)
        return rows

    assert metrics("a") == metrics("b")


@pytest.mark.parametrize("content", ['{"runs": []}', "not json at all", '{"benchmarks": "nope"}'])
def test_report_refuses_a_false_benchmark_file(existing_out, tmp_path, content):
    bogus = tmp_path / "bench.json"
    bogus.write_text(content)
    before = snapshot(existing_out)
    proc = run_cli("report", str(existing_out), "--benchmarks", str(bogus))
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert str(bogus) in proc.stderr and "Traceback" not in proc.stderr
    assert snapshot(existing_out) == before


def test_report_on_missing_folder_and_corrupt_result_file(existing_out, tmp_path):
    proc = run_cli("report", str(tmp_path / "no-results"))
    assert proc.returncode == 2 and "does not exist" in proc.stderr and not (tmp_path / "no-results").exists()
    folder = tmp_path / "copy"
    (folder / "runs").mkdir(parents=True)
    (good,) = (existing_out / "runs").glob("*.json")
    (folder / "runs" / good.name).write_bytes(good.read_bytes())
    (folder / "runs" / "broken.json").write_text('{"run_id": "x", "config": ')  # cut off mid-write
    (folder / "runs" / "other.json").write_text('{"hello": "world"}')  # JSON, but not a run
    proc = run_cli("report", str(folder))
    assert proc.returncode == 0, proc.stderr
    assert "broken.json" in proc.stderr and "other.json" in proc.stderr
    assert "logistic" in (folder / "report.md").read_text()
