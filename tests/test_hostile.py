"""Hostile input and broken environments: each ends in one line naming the file or option, the documented
exit code (2 a mistake, 130 Ctrl-C, 141 a closed pipe), nothing written it should not, nothing finished lost.
In-process through cli.main unless a subprocess is the point (signals, pipes, imports, encodings)."""
from __future__ import annotations

import errno
import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import make_digits, write_dataset, write_idx

import mnistbench
from mnistbench import cli, files, results
from mnistbench.data import DataError, load_arrays, read_idx

FAST = ["--family", "softmax", "--epochs", "1", "--quiet"]


def cli_error(capsys, argv, code=2) -> str:
    """Run the CLI; assert the exit code and that stderr is exactly one line, and return that line."""
    assert cli.main([str(a) for a in argv]) == code
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert "Traceback" not in err[0]
    return err[0]


def tree(folder: Path) -> dict:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()} \
        if folder.exists() else {}


def bench_entry(name, mean=1.0, **stats):
    return {"name": name, "fullname": f"b.py::{name}", "group": "g", "extra_info": {},
            "stats": {"mean": mean, "stddev": 0.1, "median": mean, "min": mean, "max": mean, "rounds": 5,
                      "iqr": 0.1, "iterations": 1, **stats}}


def write_bench(path: Path, entries) -> Path:
    path.write_text(json.dumps({"machine_info": {"torch": "2.15.0"}, "benchmarks": entries}), encoding="utf-8")
    return path


# ---------------------------------------------------------------- pytest-benchmark JSON of the wrong shape
BAD_ENTRIES = [{"name": "no_stats"}, "a string", 7, bench_entry("string_mean", mean="1.0"),
               bench_entry("nan_rounds", rounds=float("nan")), bench_entry("zero", mean=0.0),
               {"stats": {"mean": 1}}, bench_entry("bad_data", data=["x"])]


def test_compare_of_only_bad_benchmark_entries_is_one_line(tmp_path, capsys):
    base = write_bench(tmp_path / "base.json", BAD_ENTRIES)
    new = write_bench(tmp_path / "new.json", BAD_ENTRIES)
    captured = []
    assert cli.main(["compare", str(base), str(new), "--out", str(tmp_path / "out")]) == 2
    captured = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in captured if not line.startswith("warning: skipping")]
    assert len(errors) == 1 and "base.json holds no usable benchmark" in errors[0]
    assert all("base.json: benchmark" in w for w in captured if w.startswith("warning"))
    assert not (tmp_path / "out").exists()


def test_bad_entries_are_skipped_with_a_warning_and_the_rest_compared(tmp_path, capsys):
    base = write_bench(tmp_path / "base.json", [bench_entry("good", 1.0), *BAD_ENTRIES])
    new = write_bench(tmp_path / "new.json", [bench_entry("good", 1.0), "junk"])
    assert cli.main(["compare", str(base), str(new), "--out", str(tmp_path / "out")]) == 0
    out, err = capsys.readouterr()
    assert "good" in out
    warnings = err.strip().splitlines()
    assert len(warnings) == len(BAD_ENTRIES) + 1 and all(w.startswith("warning: skipping") for w in warnings)
    assert "new.json: benchmark 2 is a str" in err and "string_mean" in err and "no stats" in err


def test_report_benchmarks_folder_warns_of_a_truncated_file_and_a_pipe(tmp_path, tiny_env, capsys):
    results_dir = tmp_path / "results"
    assert cli.main(["run", *FAST, "--impl", "manual", "--out", str(results_dir)]) == 0
    folder = tmp_path / "benches"
    folder.mkdir()
    write_bench(folder / "good.json", [bench_entry("good")])
    (folder / "truncated.json").write_text(json.dumps({"benchmarks": [bench_entry("x")]})[:40])
    os.mkfifo(folder / "pipe.json")  # opening it would wait for a writer forever
    capsys.readouterr()
    assert cli.main(["report", str(results_dir), "--benchmarks", str(folder)]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [next(line for line in err if "truncated.json" in line)]
    assert "not readable JSON" in err[0]
    assert "`good`" in (results_dir / "report.md").read_text(encoding="utf-8")


def test_read_regular_text_refuses_a_fifo_at_once(tmp_path):
    os.mkfifo(tmp_path / "run.json")
    started = time.monotonic()
    with pytest.raises(OSError, match="not a regular file"):
        files.read_regular_text(tmp_path / "run.json")
    assert time.monotonic() - started < 5


# ---------------------------------------------------------------- data that decodes but cannot be used
def dataset(root: Path, train_labels=None, n_test=50, test_size=28, train_images=None) -> Path:
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    images, labels = make_digits(300, 1)
    if train_labels is not None:
        labels = np.asarray(train_labels, dtype=np.uint8)
        images = images[: len(labels)]
    write_idx(raw / "train-images-idx3-ubyte", images if train_images is None else train_images)
    write_idx(raw / "train-labels-idx1-ubyte", labels)
    test_images, test_labels = make_digits(max(n_test, 1), 2, size=test_size)
    write_idx(raw / "t10k-images-idx3-ubyte", test_images[:n_test])
    write_idx(raw / "t10k-labels-idx1-ubyte", test_labels[:n_test])
    return root


@pytest.mark.parametrize("kind, argv, message", [
    ("no class present", ["--family", "logistic"], "none of the classes [0, 1]"),
    ("one image of a class", ["--family", "logistic"], "fewer than 5 images of class(es) [1]"),
    ("empty test set", ["--family", "mlp", "--hidden", "8"], "holds no images"),
    ("test size differs", ["--family", "softmax"], "the test images in"),
])
def test_unusable_data_is_one_line_and_nothing_written(tmp_path, capsys, kind, argv, message):
    labels = {"no class present": [2 + i % 8 for i in range(300)],
              "one image of a class": [1] + [0] * 100 + [2] * 199}.get(kind)
    root = dataset(tmp_path / "data", train_labels=labels, n_test=0 if kind == "empty test set" else 50,
                   test_size=20 if kind == "test size differs" else 28)
    out = tmp_path / "out"
    line = cli_error(capsys, ["run", *argv, "--epochs", "1", "--quiet", "--data-root", root, "--out", out])
    assert message in line
    assert not list(out.glob("runs/*.json"))


@pytest.mark.parametrize("dtype, code", [(">i2", 0x0B), (">i4", 0x0C), (">f4", 0x0D), (">f8", 0x0E)])
def test_big_endian_idx_types_read_as_their_values(tmp_path, dtype, code):
    values = np.arange(2 * 3 * 4).reshape(2, 3, 4).astype(dtype)
    path = tmp_path / "x-idx3"
    path.write_bytes(bytes([0, 0, code, 3]) + np.array(values.shape, ">u4").tobytes() + values.tobytes())
    read = read_idx(path)
    assert read.dtype.isnative and read.tolist() == values.tolist()


def test_a_whole_data_set_in_big_endian_int16_loads(tmp_path):
    root = write_dataset(tmp_path)
    raw = root / "MNIST" / "raw" / "train-images-idx3-ubyte"
    images = read_idx(raw).astype(">i2")
    raw.write_bytes(bytes([0, 0, 0x0B, 3]) + np.array(images.shape, ">u4").tobytes() + images.tobytes())
    arrays = load_arrays("mnist", root)
    assert arrays["train"][0].tolist() == images.astype(np.uint8).tolist()
    images[0, 0, 0] = 300  # not a pixel
    raw.write_bytes(bytes([0, 0, 0x0B, 3]) + np.array(images.shape, ">u4").tobytes() + images.tobytes())
    with pytest.raises(DataError, match="train-images-idx3-ubyte holds pixel values"):
        load_arrays("mnist", root)


# ---------------------------------------------------------------- outputs that cannot be written
@pytest.fixture
def finished_run(tmp_path, tiny_env):
    out = tmp_path / "results"
    assert cli.main(["run", *FAST, "--impl", "manual", "--out", str(out)]) == 0
    return out


def deny_writes(monkeypatch, folder: Path):
    """A read-only folder; as root (who may write anyway) the refusal comes from mkstemp instead."""
    if os.geteuid() != 0:
        folder.chmod(0o555)
        return
    real = files.tempfile.mkstemp

    def refuse(*args, dir=None, **kwargs):
        if Path(dir).resolve().is_relative_to(folder.resolve()):
            raise PermissionError(errno.EACCES, "Permission denied")
        return real(*args, dir=dir, **kwargs)

    monkeypatch.setattr(files.tempfile, "mkstemp", refuse)


def test_report_into_a_read_only_folder_is_one_line(finished_run, monkeypatch, capsys):
    capsys.readouterr()
    before = tree(finished_run)
    deny_writes(monkeypatch, finished_run)
    try:
        line = cli_error(capsys, ["report", finished_run])
    finally:
        finished_run.chmod(0o755)
    assert str(finished_run) in line and ("not writable" in line or "Permission denied" in line)
    assert tree(finished_run) == before


def test_plots_existing_as_a_file_is_one_line_and_no_report(finished_run, capsys):
    (finished_run / "plots").write_text("in the way")
    capsys.readouterr()
    line = cli_error(capsys, ["report", finished_run])
    assert "plots folder" in line and "is a file" in line
    assert not (finished_run / "report.md").exists()


def test_compare_out_that_cannot_be_a_folder_is_one_line(finished_run, tmp_path, capsys):
    (tmp_path / "afile").write_text("x")
    capsys.readouterr()
    line = cli_error(capsys, ["compare", finished_run, finished_run, "--out", tmp_path / "afile" / "sub"])
    assert "afile/sub" in line and "cannot be created" in line


def test_a_full_disk_mid_sweep_stops_with_the_earlier_runs_intact(tmp_path, tiny_env, monkeypatch, capsys):
    real_fsync, calls = os.fsync, []

    def fsync(fd):
        calls.append(fd)
        if len(calls) > 1:  # the second result file meets a full disk
            raise OSError(errno.ENOSPC, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(files.os, "fsync", fsync)
    out = tmp_path / "out"
    line = cli_error(capsys, ["sweep", *FAST, "--impl", "manual", "--seed", "0,1,2", "--out", out])
    assert "no space left on the device" in line and "--resume" in line and str(out / "runs") in line
    saved = [p for p in (out / "runs").iterdir() if p.name != ".claims"]
    assert len(saved) == 1 and json.loads(saved[0].read_text())["status"] == "ok"  # no temp file left
    assert list((out / "runs" / ".claims").iterdir()) == []  # the stopped sweep released its claims


# ---------------------------------------------------------------- the environment
def test_result_files_get_the_umask_mode_and_utf8(tmp_path):
    previous = os.umask(0o027)
    try:
        files.atomic_write_text(tmp_path / "a.md", "Δ ± →")
    finally:
        os.umask(previous)
    files.atomic_write_text(tmp_path / "b.md", "x")
    assert stat.S_IMODE((tmp_path / "a.md").stat().st_mode) == 0o640
    assert stat.S_IMODE((tmp_path / "b.md").stat().st_mode) == 0o666 & ~previous
    assert (tmp_path / "a.md").read_bytes() == "Δ ± →".encode()


def test_run_files_are_readable_by_others(finished_run):
    mode = stat.S_IMODE(next((finished_run / "runs").glob("*.json")).stat().st_mode)
    assert mode == 0o666 & ~files._umask() and mode & stat.S_IROTH  # 0644 under the usual umask


def test_empty_out_variable_means_the_default_folder(monkeypatch):
    monkeypatch.setenv("MNISTBENCH_OUT", "")
    assert files.default_out() == Path("mnistbench-out")
    monkeypatch.setenv("MNISTBENCH_OUT", "  ")
    assert files.default_out() == Path("mnistbench-out")


@pytest.mark.parametrize("argv, option", [
    (["run", "--out", "~no-such-user-here/x"], "--out"),
    (["run", "--data-root", "~no-such-user-here"], "--data-root"),
    (["run", "--out", ""], "--out"),
    (["report", ""], "folder"),
])
def test_unusable_paths_are_one_line(tmp_path, capsys, argv, option):
    line = cli_error(capsys, argv)
    assert option in line


def test_unexpandable_home_in_an_env_variable(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MNISTBENCH_DATA", "~no-such-user-here/data")
    line = cli_error(capsys, ["run", *FAST, "--out", tmp_path / "out"])
    assert "MNISTBENCH_DATA" in line and "cannot expand" in line
    assert not (tmp_path / "out").exists()


def subprocess_env(**extra):
    return {**os.environ, "MPLBACKEND": "Agg", "PYTHONPATH": str(Path(mnistbench.__file__).parent.parent),
            **extra}


def test_an_ascii_terminal_gets_compare_output_and_utf8_files(tmp_path):
    base = write_bench(tmp_path / "base.json", [bench_entry("good", 1.0)])
    new = write_bench(tmp_path / "new.json", [bench_entry("good", 1.1)])
    proc = subprocess.run([sys.executable, "-m", "mnistbench", "compare", str(base), str(new), "--out",
                           str(tmp_path / "out")], capture_output=True, timeout=120, check=False,
                          env=subprocess_env(PYTHONIOENCODING="ascii", LC_ALL="C", LANG="C"))
    assert proc.returncode in (0, 1), proc.stderr.decode()
    assert b"Traceback" not in proc.stderr and b"acc" in proc.stdout
    assert "Δ acc" in (tmp_path / "out" / "compare.md").read_text(encoding="utf-8")


def test_an_ascii_locale_trains_and_reports_in_utf8_files(tmp_path, tiny_root):
    """The C locale with UTF-8 mode and locale coercion off: Python's preferred encoding is ASCII there, and
    every file is still written (and read back) as UTF-8."""
    ascii_env = subprocess_env(PYTHONUTF8="0", PYTHONCOERCECLOCALE="0", LC_ALL="C", LANG="C")
    probe = subprocess.run([sys.executable, "-c", "import locale; print(locale.getpreferredencoding(False))"],
                           capture_output=True, text=True, env=ascii_env, check=True)
    if "ascii" not in probe.stdout.lower() and "ansi_x3.4" not in probe.stdout.lower():
        pytest.skip(f"this Python keeps {probe.stdout.strip()} in the C locale")
    out = tmp_path / "out"
    for argv in (["run", "--family", "logistic", "--impl", "manual,handgrad", "--epochs", "1", "--data-root",
                  str(tiny_root), "--out", str(out)], ["report", str(out)]):
        proc = subprocess.run([sys.executable, "-m", "mnistbench", *argv], capture_output=True, timeout=300,
                              check=False, env=ascii_env)
        assert proc.returncode == 0 and b"Traceback" not in proc.stderr, proc.stderr.decode()
    assert "±" in (out / "report.md").read_text(encoding="utf-8")
    assert len(results.load_results(out)) == 2


# ---------------------------------------------------------------- signals, pipes, imports
HEAVY_CHECK = "heavy = {'torch', 'pandas', 'scipy', 'matplotlib'} & set(sys.modules)\nassert not heavy, heavy\n"


@pytest.mark.parametrize("code", [
    # parsing a command line, and the executors the options offer
    "import sys\nfrom mnistbench import cli\ncli.build_parser().parse_args(['run', '--epochs', '1'])\n" + HEAVY_CHECK
    + "from mnistbench import executors\nfrom mnistbench.cli import options\n"
      "assert set(options.EXECUTORS) == set(executors.EXECUTORS) - {'interleave'}\n",
    # `mnistbench list` reads the catalog (families, their factories' names); factories load when a model is built
    "import sys, contextlib, io\nfrom mnistbench import cli\nout = io.StringIO()\n"
    "with contextlib.redirect_stdout(out):\n    assert cli.main(['list']) == 0\n" + HEAVY_CHECK
    + "print(out.getvalue())\n",
], ids=["parsing", "list"])
def test_parsing_and_list_import_nothing_heavy(code):
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False,
                          env=subprocess_env())
    assert proc.returncode == 0, proc.stderr
    if "cli.main(['list'])" in code:  # the listing names every built-in implementation
        rows = {tuple(line.split()[:2]) for line in proc.stdout.splitlines()}
        assert {("mlp", "manual"), ("mlp", "builtin"), ("softmax", "handgrad"), ("logistic", "sklearn")} <= rows


def test_ctrl_c_while_importing_and_twice_is_130_one_line(tmp_path, tiny_root):
    argv = [sys.executable, "-m", "mnistbench", "sweep", "--family", "mlp", "--impl", "manual", "--hidden", "8",
            "--epochs", "50", "--no-early-stop", "--seed", "0,1,2,3", "--data-root", str(tiny_root),
            "--out", str(tmp_path / "out")]
    default_sigint = lambda: signal.signal(signal.SIGINT, signal.SIG_DFL)
    early = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=subprocess_env(), preexec_fn=default_sigint)  # noqa: PLW1509
    time.sleep(0.6)  # torch, pandas and scipy are still importing
    early.send_signal(signal.SIGINT)
    _, err = early.communicate(timeout=60)
    assert early.returncode == 130 and len(err.strip().splitlines()) == 1 and "interrupted" in err, err
    twice = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=subprocess_env(), preexec_fn=default_sigint)  # noqa: PLW1509
    assert twice.stdout.readline().startswith("[1/")  # training has started
    twice.send_signal(signal.SIGINT)
    time.sleep(0.05)
    twice.send_signal(signal.SIGINT)
    _, err = twice.communicate(timeout=60)
    assert twice.returncode == 130 and "Traceback" not in err, err
    assert 1 <= len(err.strip().splitlines()) <= 2 and all("interrupted" in line for line in err.strip().splitlines())


def test_a_closed_stdout_is_a_quiet_141():
    proc = subprocess.Popen([sys.executable, "-m", "mnistbench", "list"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=subprocess_env())
    proc.stdout.close()  # as `| head -1` does, before anything is printed
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 141 and err == b""


# ---------------------------------------------------------------- the Python API
@pytest.mark.parametrize("options, message", [
    ({"lr": "0.1"}, "learning rate must be a number, got '0.1' (str)"),
    ({"epochs": 1.5}, "epochs must be an integer, got 1.5 (float)"),
    ({"batch_size": 64.0}, "batch size must be an integer, got 64.0 (float)"),
    ({"seed": True}, "seed must be an integer, got True (bool)"),
    ({"threads": "2"}, "threads must be an integer"),
    ({"patience": 2.0}, "patience must be an integer"),
    ({"device": 0}, "device must be a name"),
    ({"dtype": ("float32",)}, "dtype must be a name"),
    ({"classes": 5}, "classes must be a list or tuple of integers, got 5 (int)"),
    ({"classes": [0, "1"]}, "classes item must be an integer"),
    ({"hidden": "512"}, "hidden sizes must be a list or tuple of integers, got '512' (str)"),
    ({"hidden": (512, 0.5)}, "hidden sizes item must be an integer"),
    ({"family": 5}, "family must be a name or a list of names, got 5 (int)"),
    ({"impl": [None]}, "impl must be a name"),
    ({"out": 5}, "out must be a path"),
    ({"data_root": 1.0}, "data_root must be a path"),
    ({"save": "yes"}, "save must be True or False"),
    ({"resume": 1}, "resume must be True or False"),
    # the callbacks are gone (api.execute yields the progress instead): an unknown option like any other
    ({"on_epoch": print}, "unknown option 'on_epoch'; choose from epochs, lr, batch_size"),
    ({"no_early_stop": "no"}, "no_early_stop must be True or False"),
])
def test_api_wrong_types_are_config_errors_before_anything_is_written(tmp_path, tiny_env, options, message):
    options = {"family": "softmax", "impl": "manual", "epochs": 1, "out": tmp_path / "out", **options}
    with pytest.raises(mnistbench.ConfigError) as caught:
        mnistbench.run(options.pop("family"), options.pop("impl"), **options)
    assert message in str(caught.value)
    assert not (tmp_path / "out").exists()


def test_errors_are_exported_and_config_errors():
    assert issubclass(mnistbench.DataError, mnistbench.ConfigError)
    assert issubclass(mnistbench.OutputError, mnistbench.ConfigError)
    assert issubclass(mnistbench.ConfigTypeError, TypeError)
    assert mnistbench.ResultError.__name__ == "ResultError"


def test_compare_takes_load_results_frames_and_labels_by_impl(tmp_path, tiny_env):
    base, new = tmp_path / "base", tmp_path / "new"
    for out in (base, new):
        mnistbench.run("logistic", ["manual", "builtin"], epochs=3, out=out, patience=None)
    frame = mnistbench.compare(mnistbench.load_results(base), mnistbench.load_results(new))
    assert len(frame) == 2 and set(frame["differs"]) == {"same environment"}
    by_impl = mnistbench.compare(base, by="impl")
    assert not by_impl["configuration"].str.contains("None").any()
    assert by_impl["configuration"].str.startswith("logistic lr=").all()


@pytest.mark.parametrize("kwargs, message", [
    ({"dtypes": "float32"}, "dtypes must be a tuple"),
    ({"dtypes": ("float16",)}, "choose from float32, bfloat16"),
    ({"impl": "a/b"}, "cannot be part of a file name"),
    ({"impl": "..x"}, "cannot be part of a file name"),
    ({"impl": ".hidden"}, "cannot be part of a file name"),
    ({"impl": ""}, "cannot be part of a file name"),
    ({"impl": "a\0b"}, "cannot be part of a file name"),
    ({"impl": "a\\b"}, "cannot be part of a file name"),
    ({"impl": 3}, "must be a string"),
    ({"factory": None}, "not callable"),
    ({"iterative": "yes"}, "iterative must be True or False"),
])
def test_register_refuses_bad_arguments_in_one_line(kwargs, message):
    arguments = {"family": "softmax", "impl": "mine", "factory": lambda *a: None, **kwargs}
    with pytest.raises(mnistbench.ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        mnistbench.register(arguments.pop("family"), arguments.pop("impl"), arguments.pop("factory"), **arguments)
    assert ("softmax", kwargs.get("impl", "mine")) not in {(e.family, e.name) for e in mnistbench.implementations()}


# ---------------------------------------------------------------- small ones
@pytest.mark.parametrize("argv, message", [
    (["run", "--family", "logistic", "--hidden", "0"], "--hidden sizes must be one or more integers >= 1"),
    (["run", "--family", "logistic,softmax", "--hidden", "64"], "--hidden applies to families with hidden layers"),
    (["run", "--family", "mlp", "--hidden", "512,,128"], "--hidden: empty item in '512,,128'"),
    (["sweep", "--family", "mlp", "--hidden", "512,,128"], "--hidden: empty item in '512,,128'"),
    (["sweep", "--family", "mlp", "--seed", "1,"], "--seed: empty item in '1,'"),
    (["run", "--family", "mlp", "--seed", "1,"], "argument --seed: invalid int value: '1,'"),  # run: one value
])
def test_option_typos_are_one_line(tmp_path, capsys, argv, message):
    out = tmp_path / "out"
    line = cli_error(capsys, [*argv, "--epochs", "1", "--out", out])
    assert message in line
    assert not out.exists()


def test_save_or_stop_names_the_run_and_what_is_intact(tmp_path):
    def full_disk(record, out):
        raise OSError(errno.ENOSPC, "No space left on device")

    from dataclasses import replace

    from conftest import make_result

    with pytest.raises(mnistbench.OutputError) as caught:
        files.save_or_stop(full_disk, replace(make_result(), run_id="softmax-manual-abc"), tmp_path, saved_before=3)
    message = str(caught.value)
    assert "softmax-manual-abc" in message and "3 run(s) saved before it are intact" in message
    assert "no space left" in message and "\n" not in message
