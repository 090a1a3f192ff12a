"""Tests of the CSV source: every bad-data case fails before training with a message that names
the file, the column and the first row; options (fill, sort, delimiter, defaults) work; the
classification formats (wide and long) load."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydantic import TypeAdapter, ValidationError

from bnplace.config.data import CsvData, DataConfig
from bnplace.data import prepare
from bnplace.names.errors import DataError

ADAPTER = TypeAdapter(DataConfig)


def spec(**fields: Any) -> CsvData:
    data: dict[str, Any] = {"source": "csv", "path": "series.csv"}
    if fields.get("task") != "classify":
        data["window"] = 4  # classification takes the window from the sequences
    data |= fields
    return ADAPTER.validate_python(data)  # type: ignore[return-value]


def series_rows(n: int = 60, seed: int = 0) -> list[list[object]]:
    """Hourly rows: date, three features, a target."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        day, hour = divmod(i, 24)
        rows.append(
            [
                f"2024-01-{day + 1:02d} {hour:02d}:00",
                round(float(10 + 5 * np.sin(i / 4) + rng.normal()), 3),
                round(float(rng.uniform(40, 90)), 3),
                round(float(max(0.0, 100 * np.sin(i / 3))), 3),
                round(float(50 + 10 * np.cos(i / 5) + rng.normal()), 3),
            ]
        )
    return rows


HEADER = ["date", "temp", "humidity", "solar", "load"]


def write(tmp_path: Path, rows: list[list[object]], header: list[str] = HEADER, sep=",") -> Path:
    path = tmp_path / "series.csv"
    lines = [sep.join(header)] + [sep.join("" if v is None else str(v) for v in r) for r in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def error_of(tmp_path: Path, **fields: Any) -> DataError:
    with pytest.raises(DataError) as info:
        prepare(spec(**fields), tmp_path)
    return info.value


def text(err: DataError) -> str:
    """The full rendered message: file, column, row, message, did-you-mean."""
    return err.args[0]


# --- a good file -------------------------------------------------------------------------


def test_csv_with_date_three_features_and_target_loads_windows_and_splits(tmp_path):
    rows = series_rows(100)
    write(tmp_path, rows)
    ds = prepare(spec(time_column="date", targets=["load"], window=8, horizon=2), tmp_path)
    assert ds.feature_names == ("temp", "humidity", "solar", "load")
    assert ds.target_names == ("load",)
    assert (ds.features, ds.outputs) == (4, 2)
    counts = [ds.split(name).n for name in ("train", "val", "test")]
    assert counts == [70 - 8 - 2 + 1, 15 - 8 - 2 + 1, 15 - 8 - 2 + 1]
    train = ds.split("train")
    assert train.x.shape == (counts[0], 8, 4) and train.x.dtype == np.float32
    assert train.y.shape == (counts[0], 2) and train.y.dtype == np.float32
    # the first target of the first window is the load of row 9 (after 8 input rows)
    assert ds.to_original(train.y)[0, 0] == pytest.approx(rows[8][4], abs=1e-4)
    assert ds.part("test").end == "2024-01-05 03:00"
    assert ds.warnings == ()


def test_default_features_are_the_numeric_columns_and_default_target_the_last(tmp_path):
    rows = [[*r, "north"] for r in series_rows(80)]
    write(tmp_path, rows, [*HEADER, "site"])
    ds = prepare(spec(time_column="date"), tmp_path)
    assert ds.feature_names == ("temp", "humidity", "solar", "load")
    assert ds.target_names == ("load",)
    assert any("skipped non-numeric or unnamed column(s): 'site'" in w for w in ds.warnings)


def test_a_saved_index_column_is_not_a_default_feature(tmp_path):
    rows = [[i, *r] for i, r in enumerate(series_rows(80))]
    write(tmp_path, rows, ["", *HEADER])
    ds = prepare(spec(time_column="date"), tmp_path)
    assert ds.feature_names == ("temp", "humidity", "solar", "load")
    assert any("'Unnamed: 0'" in w for w in ds.warnings)


def test_targets_outside_features_are_targets_only(tmp_path):
    write(tmp_path, series_rows(80))
    ds = prepare(spec(features=["temp", "solar"], targets=["load", "humidity"]), tmp_path)
    assert ds.feature_names == ("temp", "solar")
    assert ds.target_names == ("load", "humidity")
    assert ds.outputs == 2


def test_semicolon_delimiter(tmp_path):
    write(tmp_path, series_rows(80), sep=";")
    ds = prepare(spec(time_column="date", delimiter=";"), tmp_path)
    assert ds.features == 4


def test_gaps_in_time_are_reported_not_fatal(tmp_path):
    rows = series_rows(90)
    del rows[30:35]  # five missing hours
    write(tmp_path, rows)
    ds = prepare(spec(time_column="date"), tmp_path)
    (warning,) = ds.warnings
    assert "1 gap(s) in 'date'" in warning and "0 days 06:00:00" in warning
    assert "2024-01-02 05:00" in warning


# --- bad data: each case of the issue with its message ------------------------------------


def test_missing_file_names_the_resolved_path(tmp_path):
    err = error_of(tmp_path, path="nope/series.csv")
    assert err.file == str(tmp_path / "nope" / "series.csv")
    assert "file not found" in text(err) and "'nope/series.csv'" in text(err)


def test_misspelled_column_suggests_the_right_one(tmp_path):
    write(tmp_path, series_rows(60))
    err = error_of(tmp_path, time_column="date", targets=["lod"])
    assert err.column == "lod" and err.suggestion == "load"
    assert "no column 'lod' (named in data.targets)" in text(err)
    assert "did you mean: load" in text(err)
    assert "'temp', 'humidity', 'solar', 'load'" in text(err)


def test_missing_time_column_is_named(tmp_path):
    write(tmp_path, series_rows(60))
    err = error_of(tmp_path, time_column="Date")
    assert err.column == "Date" and err.suggestion == "date"


def test_wrong_delimiter_gets_a_hint(tmp_path):
    write(tmp_path, series_rows(60), sep=";")
    err = error_of(tmp_path, time_column="date")
    assert "set data.delimiter: ';'" in text(err)


def test_non_numeric_value_names_column_row_and_value(tmp_path):
    rows = series_rows(60)
    rows[6][2] = "high"
    rows[9][2] = "low"
    write(tmp_path, rows)
    err = error_of(tmp_path, time_column="date")
    assert (err.file, err.column, err.row) == (str(tmp_path / "series.csv"), "humidity", 7)
    assert "2 non-numeric value(s), the first 'high' at row 7 (line 8)" in text(err)


@pytest.mark.parametrize(
    ("cell", "kind"), [("", "1 NaN/empty, 0 inf"), ("inf", "0 NaN/empty, 1 inf")]
)
def test_nan_or_inf_reports_count_first_row_and_the_fill_option(tmp_path, cell, kind):
    rows = series_rows(60)
    rows[4][3] = cell
    rows[20][1] = ""
    write(tmp_path, rows)
    err = error_of(tmp_path, time_column="date")
    assert (err.column, err.row) == ("solar", 5)
    assert f"1 missing or infinite value(s) ({kind}), the first at row 5" in text(err)
    assert "also in 'temp': 1" in text(err)
    assert "set data.fill to ffill, interpolate or drop" in text(err)


def test_fill_ffill_interpolate_and_drop(tmp_path):
    rows = series_rows(60)
    rows[0][1] = ""  # leading: cannot be forward filled -> dropped
    rows[10][1] = ""
    rows[11][1] = "nan"
    write(tmp_path, rows)
    kw = {"time_column": "date", "standardize": False, "split": {"train": 0.8, "val": 0.1}}
    kw["split"]["test"] = 0.1

    ffill = prepare(spec(fill="ffill", **kw), tmp_path)
    temp = ffill.part("train").inputs[:, 0]
    assert temp.size == 59 * 0 + ffill.part("train").inputs.shape[0]
    # row 11 and 12 (positions 9, 10 after dropping the first row) repeat row 10's value
    assert temp[9] == temp[10] == pytest.approx(rows[9][1])
    assert any("dropped 1 leading row(s)" in w for w in ffill.warnings)

    inter = prepare(spec(fill="interpolate", **kw), tmp_path)
    temp = inter.part("train").inputs[:, 0]
    step = (rows[12][1] - rows[9][1]) / 3
    assert temp[9] == pytest.approx(rows[9][1] + step, abs=1e-4)
    assert temp[10] == pytest.approx(rows[9][1] + 2 * step, abs=1e-4)

    drop = prepare(spec(fill="drop", **kw), tmp_path)
    rows_kept = sum(drop.part(s).inputs.shape[0] for s in ("train", "val", "test"))
    assert rows_kept == 57
    assert any("dropped 3 row(s)" in w for w in drop.warnings)
    assert any("gap(s) in 'date'" in w for w in drop.warnings)  # the dropped hours are gaps


def test_constant_column_is_rejected(tmp_path):
    rows = series_rows(60)
    for r in rows:
        r[3] = 7
    write(tmp_path, rows)
    err = error_of(tmp_path, time_column="date")
    assert err.column == "solar"
    assert "constant column (every value is 7): zero variance" in text(err)


def test_column_constant_in_the_train_split_only_cannot_be_standardised(tmp_path):
    rows = series_rows(60)
    for i, r in enumerate(rows):
        r[3] = 0 if i < 50 else i
    write(tmp_path, rows)
    err = error_of(tmp_path, time_column="date")
    assert err.column == "solar" and "constant within the train split" in text(err)
    # without standardisation the same file is fine
    assert prepare(spec(time_column="date", standardize=False), tmp_path).features == 4


def test_too_few_rows_for_window_horizon_and_splits(tmp_path):
    write(tmp_path, series_rows(40))
    err = error_of(tmp_path, time_column="date", window=8, horizon=3)
    assert "too few rows: 40 rows split 0.7/0.15/0.15 give train/val/test = 28/6/6 rows" in str(err)
    assert "window + horizon = 8 + 3 = 11 rows" in text(err)
    assert "at least 72 rows" in text(err)
    write(tmp_path, series_rows(72))
    assert prepare(spec(time_column="date", window=8, horizon=3), tmp_path).split("val").n == 1


def test_unsorted_time_stamps_are_rejected_unless_sort(tmp_path):
    rows = series_rows(60)
    rows[20], rows[21] = rows[21], rows[20]
    write(tmp_path, rows)
    err = error_of(tmp_path, time_column="date")
    assert err.column == "date" and err.row == 22
    assert "time stamps are not in order" in text(err)
    assert "'2024-01-01 20:00' at row 22 (line 23) comes after '2024-01-01 21:00'" in text(err)
    assert "data.sort: true" in text(err)
    ds = prepare(spec(time_column="date", sort=True, standardize=False), tmp_path)
    assert ds.part("train").inputs[20, 0] == pytest.approx(rows[21][1])  # back in time order
    assert any("sorted the rows by 'date'" in w for w in ds.warnings)


def test_duplicate_time_stamps_are_rejected_even_with_sort(tmp_path):
    rows = series_rows(60)
    rows[31][0] = rows[30][0]
    write(tmp_path, rows)
    for sort in (False, True):
        err = error_of(tmp_path, time_column="date", sort=sort)
        assert err.column == "date" and err.row == 32
        assert "duplicate time stamp '2024-01-02 06:00' at rows 31 and 32" in text(err)


def test_unparseable_time_stamp(tmp_path):
    rows = series_rows(60)
    rows[3][0] = "yesterday"
    write(tmp_path, rows)
    err = error_of(tmp_path, time_column="date")
    assert (err.column, err.row) == ("date", 4)
    assert "not dates/times, the first 'yesterday' at row 4" in text(err)


def test_empty_file_and_header_only(tmp_path):
    (tmp_path / "series.csv").write_text("", encoding="utf-8")
    assert "the file is empty" in text(error_of(tmp_path))
    (tmp_path / "series.csv").write_text("a,b\n", encoding="utf-8")
    assert "header but no data rows" in text(error_of(tmp_path))


def test_time_column_cannot_be_a_feature(tmp_path):
    write(tmp_path, series_rows(60))
    err = error_of(tmp_path, time_column="date", features=["date", "temp"])
    assert err.column == "date" and "cannot also be a feature" in text(err)


# --- classification ----------------------------------------------------------------------


def wide_rows(n: int, classes: list[str], length: int = 10, seed: int = 0) -> list[list[object]]:
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        label = classes[i % len(classes)]
        freq = 1 + classes.index(label)
        wave = np.sin(np.linspace(0, 2 * np.pi * freq, length)) + rng.normal(0, 0.1, length)
        rows.append([label, *np.round(wave, 4).tolist()])
    return rows


def test_wide_classification_with_string_labels(tmp_path):
    header = ["label"] + [f"t{i}" for i in range(10)]
    write(tmp_path, wide_rows(40, ["up", "down"]), header)
    ds = prepare(spec(task="classify", label_column="label"), tmp_path)
    assert ds.task == "classify" and ds.class_names == ("down", "up")
    assert (ds.window, ds.features, ds.outputs) == (10, 1, 2)
    sizes = [ds.split(s).n for s in ("train", "val", "test")]
    assert sum(sizes) == 40 and min(sizes) >= 2
    for s in ("train", "val", "test"):
        assert set(ds.split(s).y.tolist()) == {0, 1}  # stratified: both classes everywhere


def test_long_classification_with_integer_labels(tmp_path):
    rows = []
    rng = np.random.default_rng(1)
    for seq in range(30):
        label = seq % 3
        for t in range(6):
            rows.append([f"s{seq}", t, label, float(label * t + rng.normal()), float(rng.normal())])
    write(tmp_path, rows, ["id", "step", "cls", "a", "b"])
    ds = prepare(
        spec(task="classify", label_column="cls", sequence_column="id", time_column="step"),
        tmp_path,
    )
    assert ds.class_names == ("0", "1", "2")
    assert ds.feature_names == ("a", "b")
    assert ds.split("train").x.shape[1:] == (6, 2)
    assert ds.split("test").y.dtype == np.int32


def test_single_class_is_rejected(tmp_path):
    header = ["label"] + [f"t{i}" for i in range(10)]
    write(tmp_path, wide_rows(20, ["only"]), header)
    err = error_of(tmp_path, task="classify", label_column="label")
    assert err.column == "label"
    assert "only one class ('only') among the 20 sequences" in text(err)


def test_unequal_sequence_lengths_are_rejected(tmp_path):
    rows = [[f"s{s}", s % 2, 0.5 * t + s] for s in range(6) for t in range(5 if s != 3 else 4)]
    write(tmp_path, rows, ["id", "cls", "v"])
    err = error_of(tmp_path, task="classify", label_column="cls", sequence_column="id")
    assert "sequences differ in length ('s3' has 4 rows, 's0' has 5 rows)" in text(err)


def test_classification_window_must_match_sequence_length(tmp_path):
    header = ["label"] + [f"t{i}" for i in range(10)]
    write(tmp_path, wide_rows(30, ["a", "b"]), header)
    err = error_of(tmp_path, task="classify", label_column="label", window=12)
    assert "the sequences have 10 steps but data.window is 12" in text(err)


def test_schema_rejects_inconsistent_csv_specs():
    with pytest.raises(ValidationError, match="needs label_column"):
        spec(task="classify")
    with pytest.raises(ValidationError, match="label_column is for task: classify"):
        spec(label_column="y")
    with pytest.raises(ValidationError, match="sort: true needs time_column"):
        spec(sort=True)
    with pytest.raises(ValidationError, match="names a column twice"):
        spec(features=["a", "a"])
    assert spec(delimiter="tab").delimiter == "\t"


# --- new-user cases (#15): target-only files, encodings, number formats, constant targets ---


def test_a_file_whose_only_numeric_column_is_the_target_forecasts_from_its_history(tmp_path):
    rows = [
        [f"2024-01-01 {i // 60:02d}:{i % 60:02d}", round(float(np.sin(i / 5)), 4)]
        for i in range(80)
    ]
    write(tmp_path, rows, header=["date", "y"])
    ds = prepare(spec(time_column="date", targets=["y"]), tmp_path)
    assert ds.feature_names == ("y",) and ds.target_names == ("y",)
    assert ds.split("train").x.shape[-1] == 1
    assert any("own history" in w for w in ds.warnings)
    # with no target named and no numeric column, the message is still the clear one
    write(tmp_path, [[f"2024-01-{i + 1:02d}", "word"] for i in range(20)], header=["date", "text"])
    assert "no numeric column" in text(error_of(tmp_path, time_column="date"))


def test_a_windows_1252_file_is_located_and_read_with_encoding(tmp_path):
    header = "date,temp °C,load\n"  # a header written by Excel on Windows
    body = "".join(f"2024-01-01 {h:02d}:00,{h}.5,{10 + h * h % 7}\n" for h in range(24))
    body += "".join(f"2024-01-02 {h:02d}:00,{h}.5,{10 + h * h % 5}\n" for h in range(24))
    (tmp_path / "series.csv").write_bytes((header + body).encode("cp1252"))
    err = error_of(tmp_path, time_column="date", targets=["load"])
    offset = header.index("°")  # the byte offset in the file: the header is ASCII before it
    message = text(err)
    assert f"not utf-8 text at byte {offset} (line 1, column {offset + 1}): 0xb0" in message
    assert "data.encoding" in message and "cp1252" in message
    ds = prepare(spec(time_column="date", targets=["load"], encoding="cp1252"), tmp_path)
    assert ds.feature_names == ("temp °C", "load")


def test_decimal_commas_and_thousands_separators_are_read_with_the_options(tmp_path):
    rows = [
        [f"2024-01-{1 + i // 24:02d} {i % 24:02d}:00", f"{i},5", f"1.{200 + i:03d},25"]
        for i in range(60)
    ]
    write(tmp_path, rows, header=["date", "temp", "load"], sep=";")
    ds = prepare(
        spec(time_column="date", targets=["load"], delimiter=";", decimal=",", thousands="."),
        tmp_path,
    )
    raw_load = ds.to_original(ds.part("train").targets)[:3, 0]
    assert raw_load == pytest.approx([1200.25, 1201.25, 1202.25])
    assert ds.feature_mean[0] == pytest.approx(np.arange(42).mean() + 0.5)  # 42 train rows
    # without the options the same file is text, and the message says where
    err = error_of(tmp_path, time_column="date", targets=["load"], delimiter=";")
    assert "non-numeric" in text(err) and "'1.200,25'" in text(err)
    assert "data.decimal: ','" in text(err) and "data.thousands: '.'" in text(err)


@pytest.mark.parametrize(
    ("fields", "fragment"),
    [
        ({"encoding": "klingon"}, "unknown text encoding"),
        ({"decimal": ",,"}, "single character"),
        ({"decimal": ","}, "decimal and delimiter are both ','"),
        ({"thousands": ".", "decimal": "."}, "thousands and decimal are both '.'"),
    ],
)
def test_reading_options_are_checked_at_validate_time(fields, fragment):
    with pytest.raises(ValidationError, match=re.escape(fragment)):
        spec(**fields)


def test_a_constant_target_gets_advice_about_targets(tmp_path):
    rows = series_rows(60)
    for r in rows:
        r[4] = 3
    write(tmp_path, rows)
    err = error_of(tmp_path, time_column="date", targets=["load"])
    assert err.column == "load" and "constant target (every value is 3)" in text(err)
    assert "data.targets" in text(err) and "data.features" not in text(err)
    rows = series_rows(60)
    for i, r in enumerate(rows):
        r[4] = 5 if i < 50 else i  # constant in the train split only
    write(tmp_path, rows)
    err = error_of(tmp_path, time_column="date", targets=["load"], features=["temp"])
    assert err.column == "load" and "scale_targets: false" in text(err)
