"""Real series that ship inside PyPI packages (the optional extra `packaged`); no network.

In: a `PackagedData` data section (its name already checked against `PACKAGED_DATASETS`). Out: a
`RawSeries` (pmdarima's taylor, sunspots, wineind, lynx, airpassengers, heartrate, woolyrnq,
austres, msft, ausbeer; statsmodels' co2, elnino and three US macrodata columns; three channels
of aeon's uschange: all bundled with the packages) or `RawSequences` (UCR/UEA datasets bundled
with aeon; the official train and test parts are joined, and `prepare` splits them with the
config's fractions). A missing package raises `MissingExtraError` naming the extra.
Variable-length sequences (JapaneseVowels, PickupGestureWiimoteZ) are left-padded with their
first value (`left_pad`), so the last step of every sequence is real data; `padding: mask`
masks the padding instead (`prepare`).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from types import ModuleType
from typing import Any

import numpy as np

from bnplace.config.data import PACKAGED_DATASETS, PackagedData
from bnplace.data.raw import RawSequences, RawSeries, left_pad
from bnplace.names.errors import DataError, MissingExtraError


def _module(name: str, package: str, dataset: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ImportError:
        raise MissingExtraError(package, "packaged", f"packaged dataset '{dataset}'") from None


def load(section: PackagedData) -> RawSeries | RawSequences:
    loader = _LOADERS[section.name]
    return loader(section.name)


def _taylor(name: str) -> RawSeries:
    datasets = _module("pmdarima.datasets", "pmdarima", name)
    values = np.asarray(datasets.load_taylor(as_series=False), dtype=np.float64)
    return RawSeries(
        values=values[:, None],
        columns=("demand",),
        feature_names=("demand",),
        target_names=("demand",),
        origin="pmdarima taylor (half-hourly electricity demand, MW)",
    )


def _sunspots(name: str) -> RawSeries:
    import pandas as pd

    datasets = _module("pmdarima.datasets", "pmdarima", name)
    series = datasets.load_sunspots(as_series=True)
    time = pd.to_datetime(pd.Series(series.index), format="%b %Y").to_numpy()
    return RawSeries(
        values=series.to_numpy(dtype=np.float64)[:, None],
        columns=("sunspots",),
        feature_names=("sunspots",),
        target_names=("sunspots",),
        origin="pmdarima sunspots (monthly mean sunspot number)",
        time=time.astype("datetime64[ns]"),
    )


def _pmdarima(column: str, origin: str, time_format: str = "") -> Callable[[str], RawSeries]:
    """A univariate series bundled with pmdarima (no download), by its `load_<name>`."""

    def load_pmdarima(name: str) -> RawSeries:
        import pandas as pd

        warnings: tuple[str, ...] = ()
        datasets = _module("pmdarima.datasets", "pmdarima", name)
        if name == "msft":  # a frame of daily prices: the close, dated
            frame = datasets.load_msft()
            values = frame["Close"].to_numpy(dtype=np.float64)
            time = pd.to_datetime(frame["Date"]).to_numpy().astype("datetime64[ns]")
        else:
            series = getattr(datasets, f"load_{name}")(as_series=True)
            values = series.to_numpy(dtype=np.float64)
            ended = int(np.flatnonzero(np.isfinite(values))[-1]) + 1  # ausbeer ends in a NaN
            if ended < values.size:
                warnings = (f"the last {values.size - ended} value(s), missing, left out",)
                series, values = series.iloc[:ended], values[:ended]
            time = None
            if time_format:
                stamps = pd.Series(series.index).astype(str)
                if time_format == "quarter":  # "Q1 1965" -> 1965Q1
                    stamps = stamps.str.replace(r"Q(\d) (\d+)", r"\2Q\1", regex=True)
                    time = pd.PeriodIndex(stamps, freq="Q").to_timestamp().to_numpy()
                else:
                    time = pd.to_datetime(stamps, format=time_format).to_numpy()
                time = time.astype("datetime64[ns]")
        return RawSeries(
            values=values[:, None],
            columns=(column,),
            feature_names=(column,),
            target_names=(column,),
            origin=f"pmdarima {name} ({origin})",
            time=time,
            warnings=warnings,
        )

    return load_pmdarima


def _quarters(first_year: int, count: int) -> np.ndarray:
    """Quarter starts from Q1 of `first_year`, as datetime64[ns]."""
    import pandas as pd

    periods = pd.period_range(f"{first_year}Q1", periods=count, freq="Q")
    return periods.to_timestamp().to_numpy().astype("datetime64[ns]")


def _one_column(name: str, column: str, values: np.ndarray, origin: str, **more: Any) -> RawSeries:
    return RawSeries(
        values=np.asarray(values, dtype=np.float64)[:, None],
        columns=(column,),
        feature_names=(column,),
        target_names=(column,),
        origin=f"{origin} ({PACKAGED_DATASETS[name][2]})",
        **more,
    )


def _co2(name: str) -> RawSeries:
    """Weekly Mauna Loa CO2; its 59 missing weeks are filled by linear interpolation (said)."""
    datasets = _module("statsmodels.datasets", "statsmodels", name)
    series = datasets.co2.load_pandas().data["co2"]
    gaps = int(series.isna().sum())
    filled = series.interpolate(method="linear", limit_direction="both")
    time = series.index.to_numpy().astype("datetime64[ns]")
    warnings = (f"{gaps} missing weekly values filled by linear interpolation",) if gaps else ()
    return _one_column(
        name, "co2_ppm", filled.to_numpy(), "statsmodels co2", time=time, warnings=warnings
    )


def _elnino(name: str) -> RawSeries:
    """Monthly sea surface temperatures, a row per year in the package: read month by month."""
    import pandas as pd

    datasets = _module("statsmodels.datasets", "statsmodels", name)
    frame = datasets.elnino.load_pandas().data
    values = frame.drop(columns="YEAR").to_numpy(dtype=np.float64).reshape(-1)
    first = int(frame["YEAR"].iloc[0])
    time = pd.date_range(f"{first}-01-01", periods=values.size, freq="MS").to_numpy()
    return _one_column(
        name, "sst_c", values, "statsmodels elnino", time=time.astype("datetime64[ns]")
    )


def _us_macro(column: str) -> Callable[[str], RawSeries]:
    """One quarterly column of statsmodels' US macrodata (1959Q1-2009Q3)."""

    def load_us_macro(name: str) -> RawSeries:
        datasets = _module("statsmodels.datasets", "statsmodels", name)
        frame = datasets.macrodata.load_pandas().data
        time = _quarters(int(frame["year"].iloc[0]), len(frame))
        return _one_column(
            name, column, frame[column].to_numpy(), "statsmodels macrodata", time=time
        )

    return load_us_macro


def _us_change(channel: str) -> Callable[[str], RawSeries]:
    """One channel of aeon's uschange (quarterly % changes, 1970Q1-2016Q3, from fpp2)."""

    def load_us_change(name: str) -> RawSeries:
        datasets = _module("aeon.datasets", "aeon", name)
        frame = datasets.load_uschange(return_array=False)
        values = frame.loc[channel].to_numpy(dtype=np.float64)
        column = f"{channel.lower()}_change_pct"
        return _one_column(name, column, values, "aeon uschange", time=_quarters(1970, values.size))

    return load_us_change


def _aeon(loader_name: str) -> Callable[[str], RawSequences]:
    def load_aeon(name: str) -> RawSequences:
        datasets = _module("aeon.datasets", "aeon", name)
        x, labels = getattr(datasets, loader_name)()
        steps, lengths = _steps_first(x, name)  # (n, length, channels)
        channels = steps.shape[2]
        names = ("value",) if channels == 1 else tuple(f"ch{i + 1}" for i in range(channels))
        return RawSequences(
            x=np.ascontiguousarray(steps, dtype=np.float64),
            labels=np.asarray(labels).astype(str),
            feature_names=names,
            origin=f"aeon {name} ({PACKAGED_DATASETS[name][2]})",
            lengths=lengths,
        )

    return load_aeon


def _steps_first(x: object, name: str) -> tuple[np.ndarray, np.ndarray | None]:
    """aeon's (n, channels, length) array, or list of (channels, length_i) arrays for unequal
    lengths, as (n, length, channels) and the lengths (`left_pad`)."""
    if isinstance(x, np.ndarray):
        return x.transpose(0, 2, 1).astype(np.float64), None
    if isinstance(x, list):
        return left_pad([np.asarray(item, np.float64).T for item in x])
    raise DataError(f"unexpected data type {type(x).__name__} from aeon", file=name)


_LOADERS: dict[str, Callable[[str], RawSeries | RawSequences]] = {
    "taylor": _taylor,
    "sunspots": _sunspots,
    "wineind": _pmdarima("sales", "Australian wine sales, litres", "%b %Y"),
    "lynx": _pmdarima("trappings", "annual Canadian lynx trappings"),
    "airpassengers": _pmdarima("passengers", "monthly airline passengers, thousands"),
    "heartrate": _pmdarima("heartrate", "heart rate, beats per minute"),
    "woolyrnq": _pmdarima("tonnes", "quarterly woollen yarn production, tonnes", "quarter"),
    "austres": _pmdarima("residents", "quarterly Australian residents, thousands"),
    "msft": _pmdarima("close", "Microsoft daily closing price, USD"),
    "ausbeer": _pmdarima("megalitres", "quarterly Australian beer production, megalitres"),
    "co2": _co2,
    "elnino": _elnino,
    "us_unemployment": _us_macro("unemp"),
    "us_inflation": _us_macro("infl"),
    "us_tbill": _us_macro("tbilrate"),
    "us_consumption": _us_change("Consumption"),
    "us_production": _us_change("Production"),
    "us_savings": _us_change("Savings"),
    "italy_power_demand": _aeon("load_italy_power_demand"),
    "gunpoint": _aeon("load_gunpoint"),
    "arrow_head": _aeon("load_arrow_head"),
    "basic_motions": _aeon("load_basic_motions"),
    "japanese_vowels": _aeon("load_japanese_vowels"),
    "pickup_gesture": _aeon("load_pickup_gesture_wiimoteZ"),
}
