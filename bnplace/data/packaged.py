"""Real series that ship inside PyPI packages (the optional extra `packaged`); no network.

In: a `PackagedData` data section (its name already checked against `PACKAGED_DATASETS`). Out: a
`RawSeries` (pmdarima's taylor, sunspots, wineind, lynx, airpassengers, heartrate,
woolyrnq, austres, msft: all bundled with the package) or `RawSequences` (UCR/UEA datasets
bundled with aeon; the official train and test parts are joined, and `prepare` splits them with the
config's fractions). A missing package raises `MissingExtraError` naming the extra.
Variable-length sequences (JapaneseVowels) are left-padded with their first value, so the
last step of every sequence is real data.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from types import ModuleType

import numpy as np

from bnplace.config.data import PACKAGED_DATASETS, PackagedData
from bnplace.data.raw import RawSequences, RawSeries
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

        datasets = _module("pmdarima.datasets", "pmdarima", name)
        if name == "msft":  # a frame of daily prices: the close, dated
            frame = datasets.load_msft()
            values = frame["Close"].to_numpy(dtype=np.float64)
            time = pd.to_datetime(frame["Date"]).to_numpy().astype("datetime64[ns]")
        else:
            series = getattr(datasets, f"load_{name}")(as_series=True)
            values = series.to_numpy(dtype=np.float64)
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
        )

    return load_pmdarima


def _aeon(loader_name: str) -> Callable[[str], RawSequences]:
    def load_aeon(name: str) -> RawSequences:
        datasets = _module("aeon.datasets", "aeon", name)
        x, labels = getattr(datasets, loader_name)()
        x = _to_array(x, name)  # (n, channels, length)
        channels = x.shape[1]
        names = ("value",) if channels == 1 else tuple(f"ch{i + 1}" for i in range(channels))
        return RawSequences(
            x=np.ascontiguousarray(x.transpose(0, 2, 1), dtype=np.float64),
            labels=np.asarray(labels).astype(str),
            feature_names=names,
            origin=f"aeon {name} ({PACKAGED_DATASETS[name][2]})",
        )

    return load_aeon


def _to_array(x: object, name: str) -> np.ndarray:
    if isinstance(x, np.ndarray):
        return x.astype(np.float64)
    if isinstance(x, list):  # unequal length: list of (channels, length_i)
        longest = max(item.shape[1] for item in x)
        padded = [
            np.pad(np.asarray(item, np.float64), ((0, 0), (longest - item.shape[1], 0)), "edge")
            for item in x
        ]
        return np.stack(padded)
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
    "italy_power_demand": _aeon("load_italy_power_demand"),
    "gunpoint": _aeon("load_gunpoint"),
    "arrow_head": _aeon("load_arrow_head"),
    "basic_motions": _aeon("load_basic_motions"),
    "japanese_vowels": _aeon("load_japanese_vowels"),
}
