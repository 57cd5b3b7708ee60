"""Property-based tests of the readers of outside files: whatever the bytes or the JSON shape, an IDX file
decodes or raises DataError, and pytest-benchmark JSON gives a table or a ResultError, nothing else."""
from __future__ import annotations

import gzip
import json
import struct

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mnistbench.data import IDX_DTYPES, DataError, read_idx
from mnistbench.reporting import benchtables, compare
from mnistbench.results import ResultError

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


# ---------------------------------------------------------------- IDX
@st.composite
def idx_files(draw):
    """Headers of random values: magic bytes, element type, rank and sizes, then a payload that may or
    may not be as long as they say."""
    code = draw(st.sampled_from([*IDX_DTYPES, 0x00, 0x0A, 0xFF]))
    ndim = draw(st.integers(0, 6))
    dims = draw(st.lists(st.one_of(st.integers(0, 5), st.integers(0, 2**32 - 1)), min_size=ndim, max_size=ndim))
    zero = draw(st.sampled_from([b"\0\0", b"\0\1", b"\xff\xff"]))
    header = zero + bytes([code, ndim]) + struct.pack(f">{len(dims)}I", *dims)
    header = header[: draw(st.integers(0, len(header)))] if draw(st.booleans()) else header
    payload = draw(st.binary(max_size=512))
    return header + payload


@SETTINGS
@given(raw=idx_files(), form=st.sampled_from(["plain", "gzip", "not gzip"]))
def test_read_idx_decodes_or_raises_data_error(tmp_path_factory, raw, form):
    path = tmp_path_factory.mktemp("idx") / ("x" if form == "plain" else "x.gz")
    path.write_bytes(gzip.compress(raw) if form == "gzip" else raw)
    try:
        array = read_idx(path)
    except DataError as exc:
        assert str(path) in str(exc)
        return
    assert array.dtype.isnative and array.ndim == raw[3]


@SETTINGS
@given(values=st.lists(st.integers(-(2**15), 2**15 - 1), min_size=1, max_size=40))
def test_big_endian_int16_round_trips(tmp_path_factory, values):
    path = tmp_path_factory.mktemp("idx") / "x"
    path.write_bytes(bytes([0, 0, 0x0B, 1]) + struct.pack(">I", len(values)) + np.array(values, ">i2").tobytes())
    assert read_idx(path).tolist() == values


# ---------------------------------------------------------------- pytest-benchmark JSON
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10, 10**6) | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=12)
stat_values = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-3, 50), st.none(),
                        st.text(max_size=4), st.booleans(), json_values)
stats_dicts = st.fixed_dictionaries({}, optional={k: stat_values for k in
                                                  (*benchtables.REQUIRED_STATS, "iqr", "iterations", "data")})
positive = st.floats(1e-9, 1e3)
good_stats = st.fixed_dictionaries({"mean": positive, "stddev": positive, "median": positive, "min": positive,
                                    "max": positive, "rounds": st.integers(1, 20)},
                                   optional={"iqr": positive, "data": st.lists(positive, min_size=1, max_size=6)})
plausible = st.builds(lambda name, stats, extra: {"name": name, "stats": stats, "extra_info": extra},
                      st.sampled_from(["a", "b"]), st.one_of(good_stats, stats_dicts),
                      st.dictionaries(st.sampled_from(benchtables.EXTRA), stat_values, max_size=4))
entries = st.one_of(
    plausible, plausible, json_values,
    st.fixed_dictionaries({}, optional={"name": st.one_of(st.text(max_size=6), json_values),
                                        "fullname": json_values, "group": st.one_of(st.text(max_size=4), json_values),
                                        "stats": st.one_of(stats_dicts, json_values),
                                        "extra_info": st.one_of(st.dictionaries(
                                            st.sampled_from(benchtables.EXTRA), stat_values), json_values)}))
documents = st.one_of(json_values, st.fixed_dictionaries(
    {"benchmarks": st.one_of(st.lists(entries, max_size=5), json_values)},
    optional={"machine_info": json_values, "datetime": json_values}))


def write(path, document, cut):
    text = json.dumps(document)
    path.write_text(text[: len(text) * cut // 4] if cut < 4 else text, encoding="utf-8")
    return path


@SETTINGS
@given(document=documents, cut=st.sampled_from([1, 4, 4, 4]))
def test_benchmark_file_is_a_table_or_a_result_error(tmp_path_factory, document, cut):
    path = write(tmp_path_factory.mktemp("bench") / "b.json", document, cut)
    try:
        frame = benchtables.benchmark_frame(path)
    except ResultError as exc:
        assert str(path) in str(exc)
        return
    benchtables.benchmark_report_frame(frame)  # the report's table renders too


@SETTINGS
@given(base=documents, new=documents, base_cut=st.sampled_from([2, 4, 4]))
def test_compare_of_two_benchmark_files_is_rows_or_a_result_error(tmp_path_factory, base, new, base_cut):
    folder = tmp_path_factory.mktemp("bench")
    base_path, new_path = write(folder / "base.json", base, base_cut), write(folder / "new.json", new, 4)
    try:
        frame = compare.compare(base_path, new_path)
    except ResultError:
        return
    assert len(frame) >= 1


@SETTINGS
@given(documents=st.lists(st.tuples(documents, st.sampled_from([1, 4, 4])), min_size=1, max_size=4))
def test_a_folder_of_benchmark_files_is_a_table_or_a_result_error(tmp_path_factory, documents):
    folder = tmp_path_factory.mktemp("benches")
    for index, (document, cut) in enumerate(documents):
        write(folder / f"{index}.json", document, cut)
    try:
        benchtables.report_tables(folder, benchmarks=folder)
    except ResultError:
        pass
