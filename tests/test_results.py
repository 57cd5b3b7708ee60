"""RunResult files: written and read back unchanged, older shapes upgraded, impossible values refused with
the file and field named, one result per run however many copies, claims between concurrent writers."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, make_result
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mnistbench import claims, results
from mnistbench.result import SCHEMA_VERSION
from mnistbench.resultfile import ResultError, parse, upgrade

REFERENCE = REPO / "results" / "reference" / "runs"


def test_a_result_round_trips_through_its_file(tmp_path):
    result = make_result(blocks=[0.2, 0.21, 0.19])
    path = results.save(result, tmp_path)
    raw = json.loads(path.read_text(encoding="utf-8"))
    assert raw["schema"] == SCHEMA_VERSION
    assert not {"epoch_seconds_median", "timing_unstable", "per_class_acc", "train_seconds"} & set(raw)
    assert results.read_result(path) == result
    assert oct(path.stat().st_mode & 0o777) == oct(0o666 & ~_umask())


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_derived_figures_come_from_the_raw_epochs():
    result = make_result(epoch_seconds=(1.0, 0.5, 0.5, 0.5, 0.5))
    assert result.train_seconds == pytest.approx(3.0)
    assert result.timing["epoch_seconds_median"] == 0.5 and result.timing["first_epoch_seconds"] == 1.0
    assert result.timing["train_samples_per_s"] == pytest.approx(2000)
    assert result.per_class_acc == {str(c): 1.0 for c in range(10)}
    assert result.to_row()["best_val_acc"] == 0.85


def test_every_committed_reference_file_reads_through_upgrade():
    paths = sorted(REFERENCE.glob("*.json")) + sorted((REPO / "results" / "tox-reference" / "runs").glob("*.json"))
    assert paths
    for path in paths:
        result = results.read_result(path)
        assert result.run_id == path.stem and result.status in ("ok", "diverged")


def test_a_version_1_file_upgrades_to_measured_fields_only():
    raw = json.loads(next(iter(sorted(REFERENCE.glob("*.json")))).read_text())
    assert "schema" not in raw and "epoch_seconds_median" in raw
    upgraded = upgrade(raw)
    assert upgraded["schema"] == SCHEMA_VERSION and "epoch_seconds_median" not in upgraded
    assert upgraded["noise"]["cpu_cores"] == raw["cpu_cores"]
    result = parse(raw)
    assert result.timing["epoch_seconds_median"] == pytest.approx(raw["epoch_seconds_median"])
    assert result.timing["train_samples_per_s"] == pytest.approx(raw["train_samples_per_s"])


def test_a_newer_schema_is_refused_with_what_to_do():
    raw = make_result().to_json()
    raw["schema"] = SCHEMA_VERSION + 1
    with pytest.raises(ResultError, match="newer mnistbench.*upgrade mnistbench"):
        parse(raw)


@pytest.mark.parametrize("change, field", [
    (lambda r: r.update(test_acc=5.0), "test_acc"),
    (lambda r: r.update(test_acc="0.9"), "test_acc"),
    (lambda r: r["config"].update(lr="0.1"), "config.lr"),
    (lambda r: r["config"].pop("family"), "config.family"),
    (lambda r: r.update(history="many"), "history"),
    (lambda r: r["history"][1].update(train_seconds="0.4"), "history[1].train_seconds"),
    (lambda r: r["history"][0].update(val_acc=-0.1), "history[0].val_acc"),
    (lambda r: r.update(status="great"), "status"),
    (lambda r: r.update(confusion=[[1, 2]]), "confusion"),
    (lambda r: r["env"].update(threads=float("nan")), "env.threads"),
])
def test_impossible_values_are_refused_naming_the_field(change, field):
    raw = make_result().to_json()
    change(raw)
    with pytest.raises(ResultError, match=field.replace("[", r"\[").replace("]", r"\]")):
        parse(raw)


def test_nan_in_a_file_is_refused(tmp_path):
    path = tmp_path / "runs" / "x.json"
    path.parent.mkdir()
    path.write_text(json.dumps(make_result().to_json()).replace('"test_acc": 0.9', '"test_acc": NaN'))
    with pytest.raises(ResultError, match="NaN"):
        results.read_result(path)


def test_a_folder_counts_each_run_once_and_names_what_it_set_aside(tmp_path):
    kept = results.save(make_result(seed=0), tmp_path)
    results.save(make_result(seed=1), tmp_path)
    copy = kept.with_name(f"{kept.stem} (1).json")
    shutil.copy(kept, copy)
    bad = tmp_path / "runs" / "bad.json"
    raw = make_result(seed=2).to_json()
    raw["test_acc"] = 5.0
    bad.write_text(json.dumps(raw))
    os.mkfifo(tmp_path / "runs" / "pipe.json")  # must not hang the reader
    loaded = results.load(tmp_path)
    assert sorted(r.config.seed for r in loaded.results) == [0, 1]
    assert [(p.name, "test_acc" in why) for p, why in loaded.skipped] == [("bad.json", True), ("pipe.json", False)]
    ((extra, kept_path, why),) = loaded.duplicates
    assert (extra, kept_path) == (copy, kept) and "copy" in why
    warnings = "\n".join(loaded.warnings())
    assert "bad.json" in warnings and copy.name in warnings and kept.name in warnings


def test_a_rerun_keeps_the_newest_and_a_finished_run_beats_a_failed_one(tmp_path):
    from dataclasses import replace

    old = make_result()
    new = replace(old, run_id=old.run_id[:-1] + "z", created="2026-12-02T00:00:00Z")
    failed = replace(make_result(status="failed"), created="2026-12-03T00:00:00Z")
    for result in (old, new, failed):
        results.save(result, tmp_path)
    (kept,) = results.load(tmp_path).results
    assert kept.run_id == new.run_id
    other_env = make_result(env={"host": "other", "prefix": "/venv2", "torch": "2.14.1"})
    results.save(other_env, tmp_path)
    assert len(results.load(tmp_path).results) == 2  # another environment's run is another measurement


def test_a_claim_is_exclusive_released_and_stale_when_its_process_is_gone(tmp_path):
    mine = claims.take(tmp_path, "abc")
    assert isinstance(mine, Path) and mine.is_file()
    assert claims.take(tmp_path, "abc")["pid"] == os.getpid()  # held by a live process
    claims.release(mine)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    mine.write_text(json.dumps({"host": os.uname().nodename, "pid": int(dead.stdout), "since": "then"}))
    assert isinstance(claims.take(tmp_path, "abc"), Path)  # stale: taken over


def test_two_sweeps_into_one_folder_train_each_configuration_once(tiny_root, tmp_path):
    env = {**os.environ, "MNISTBENCH_DATA": str(tiny_root), "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "mnistbench", "sweep", "--family", "softmax", "--impl", "manual,builtin",
               "--lr", "0.1,0.05", "--seed", "0,1", "--epochs", "2", "--quiet", "--out", str(tmp_path)]
    first = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    second = subprocess.Popen([*command, "--resume"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=env)
    for proc in (first, second):
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    files = sorted((tmp_path / "runs").glob("*.json"))
    assert len(files) == 8 and len({results.read_result(p).config_key for p in files}) == 8
    assert not list((tmp_path / "runs" / ".claims").glob("*.json"))  # every claim released


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                                     max_size=4), max_leaves=12)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(sorted(make_result().to_json()) + ["x"]), json_values, max_size=12),
       st.booleans())
def test_any_json_either_reads_or_raises_result_error(fields, start_from_valid):
    raw = make_result().to_json() if start_from_valid else {}
    raw.update(fields)
    try:
        parse(raw)
    except ResultError:
        pass
