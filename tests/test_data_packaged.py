"""Tests of packaged datasets: real loaders (skipped when the optional package is absent), the
clear message when it is missing, and the schema's name and task checks."""

from __future__ import annotations

import importlib.util
import sys
from typing import Any

import numpy as np
import pytest
from pydantic import TypeAdapter, ValidationError

from bnplace.config.data import PACKAGED_DATASETS, DataConfig
from bnplace.data import prepare
from bnplace.data.packaged import _LOADERS
from bnplace.names.errors import MissingExtraError

ADAPTER = TypeAdapter(DataConfig)
HAS_PMDARIMA = importlib.util.find_spec("pmdarima") is not None
HAS_AEON = importlib.util.find_spec("aeon") is not None
HAS_STATSMODELS = importlib.util.find_spec("statsmodels") is not None
needs_pmdarima = pytest.mark.skipif(not HAS_PMDARIMA, reason="pmdarima (extra 'packaged') absent")
needs_aeon = pytest.mark.skipif(not HAS_AEON, reason="aeon (extra 'packaged') absent")
needs_statsmodels = pytest.mark.skipif(
    not HAS_STATSMODELS, reason="statsmodels (extra 'packaged') absent"
)


def spec(**fields: Any) -> Any:
    return ADAPTER.validate_python({"source": "packaged"} | fields)


def test_every_listed_dataset_has_a_loader():
    assert set(PACKAGED_DATASETS) == set(_LOADERS)


def test_names_are_normalised_and_the_task_follows_the_dataset():
    assert spec(name="ItalyPowerDemand").name == "italy_power_demand"
    assert spec(name="ItalyPowerDemand").task == "classify"
    assert spec(name="taylor").task == "forecast"
    with pytest.raises(ValidationError, match="did you mean 'sunspots'"):
        spec(name="sunspot")
    with pytest.raises(ValidationError, match="is a classify dataset; set task: classify"):
        spec(name="gunpoint", task="forecast")


@pytest.mark.parametrize(
    ("name", "package"),
    [("taylor", "pmdarima"), ("gunpoint", "aeon"), ("co2", "statsmodels")],
)
def test_missing_package_names_the_extra(monkeypatch, name, package):
    # make the import fail as it does when the package is not installed
    for module in list(sys.modules):
        if module == package or module.startswith(package + "."):
            monkeypatch.delitem(sys.modules, module)
    monkeypatch.setitem(sys.modules, package, None)
    with pytest.raises(MissingExtraError) as info:
        prepare(spec(name=name))
    assert info.value.extra == "packaged" and info.value.package == package
    assert f"packaged dataset '{name}' needs the '{package}' package" in str(info.value)
    assert "pip install 'bnplace[packaged]'" in str(info.value)


@needs_pmdarima
def test_taylor_forecasting_series():
    ds = prepare(spec(name="taylor", window=48, horizon=2))
    assert ds.task == "forecast" and ds.feature_names == ("demand",)
    assert sum(ds.part(s).inputs.shape[0] for s in ("train", "val", "test")) == 4032
    assert ds.split("train").y.shape[1] == 2


@needs_pmdarima
def test_sunspots_has_monthly_time_stamps():
    ds = prepare(spec(name="sunspots", window=24))
    assert ds.part("train").start == "1749-01-01"
    assert ds.part("test").end == "1983-12-01"


@needs_aeon
@pytest.mark.parametrize(
    ("name", "shape", "classes"),
    [
        ("italy_power_demand", (24, 1), 2),
        ("basic_motions", (100, 6), 4),
        ("japanese_vowels", (29, 12), 9),
        ("pickup_gesture", (361, 1), 10),
    ],
)
def test_aeon_classification_datasets(name, shape, classes):
    ds = prepare(spec(name=name))
    train = ds.split("train")
    assert train.x.shape[1:] == shape and ds.window == shape[0]
    assert ds.outputs == classes
    for s in ("train", "val", "test"):
        assert len(np.unique(ds.split(s).y)) == classes  # stratified
    assert np.isfinite(train.x).all()


PMDARIMA_SHORT = (
    "wineind",
    "lynx",
    "airpassengers",
    "heartrate",
    "woolyrnq",
    "austres",
    "msft",
    "ausbeer",
)


@needs_pmdarima
@pytest.mark.parametrize("name", PMDARIMA_SHORT)
def test_more_pmdarima_series_prepare_with_a_small_window(name):
    """The series a several-dataset forecasting question can pool (all bundled, no network)."""
    ds = prepare(spec(name=name, window=12))
    assert ds.task == "forecast" and ds.features == 1
    assert ds.n_windows("train") > 40 and ds.n_windows("test") >= 2
    if name == "ausbeer":  # the package's series ends in a missing quarter: left out, and said
        assert ds.warnings == ("the last 1 value(s), missing, left out",)


# name -> (points, first time stamp, last time stamp)
STATSMODELS_AND_US_CHANGE = {
    "co2": (2284, "1958-03-29", "2001-12-29"),
    "elnino": (732, "1950-01-01", "2010-12-01"),
    "us_unemployment": (203, "1959-01-01", "2009-07-01"),
    "us_inflation": (203, "1959-01-01", "2009-07-01"),
    "us_tbill": (203, "1959-01-01", "2009-07-01"),
    "us_consumption": (187, "1970-01-01", "2016-07-01"),
    "us_production": (187, "1970-01-01", "2016-07-01"),
    "us_savings": (187, "1970-01-01", "2016-07-01"),
}


@needs_statsmodels
@needs_aeon
@pytest.mark.parametrize("name", sorted(STATSMODELS_AND_US_CHANGE))
def test_the_statsmodels_and_uschange_series_are_whole_dated_and_finite(name):
    points, first, last = STATSMODELS_AND_US_CHANGE[name]
    ds = prepare(spec(name=name, window=12))
    assert ds.task == "forecast" and ds.features == 1
    assert sum(ds.part(s).inputs.shape[0] for s in ("train", "val", "test")) == points
    assert ds.part("train").start.startswith(first) and ds.part("test").end.startswith(last)
    assert all(np.isfinite(ds.part(s).inputs).all() for s in ("train", "val", "test"))
    if name == "co2":  # its missing weeks are filled, and said; its trend leaves the range
        filled, trending = ds.warnings
        assert filled == "59 missing weekly values filled by linear interpolation"
        assert trending.startswith("target 'co2_ppm': 100% of the test split lies outside")
