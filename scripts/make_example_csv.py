"""Write configs/data/energy.csv, the example CSV that configs read (deterministic).

In: nothing (a fixed seed). Out: a CSV of 120 days of hourly readings of a small office
building: `date` (YYYY-MM-DD HH:MM), three weather features (`temperature_c`, `humidity_pct`,
`solar_wm2`) and the target `load_kw` (electric load: a base load, an occupancy profile on
working hours, electric heating below 15 °C, a little self-consumed rooftop solar, noise).
Run: python scripts/make_example_csv.py [OUTPUT]
"""

from __future__ import annotations

import sys
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

DAYS = 120
START = datetime(2024, 1, 1)
DEFAULT_OUTPUT = Path(__file__).resolve().parent.parent / "configs" / "data" / "energy.csv"


def _ar1(rng: np.random.Generator, n: int, phi: float, sd: float) -> np.ndarray:
    out = np.empty(n)
    out[0] = rng.normal(0.0, sd / np.sqrt(1 - phi**2))
    shocks = rng.normal(0.0, sd, size=n)
    for i in range(1, n):
        out[i] = phi * out[i - 1] + shocks[i]
    return out


def make(seed: int = 7) -> tuple[list[str], np.ndarray]:
    rng = np.random.default_rng(seed)
    n = DAYS * 24
    t = np.arange(n)
    hour = t % 24
    day = t / 24.0
    weekday = np.array([(START + timedelta(hours=int(i))).weekday() for i in t])
    # weather: a slow warming trend, a daily cycle and persistent weather systems
    temperature = (
        2.0
        + 10.0 * day / DAYS
        + 4.5 * np.sin(2 * np.pi * (hour - 9) / 24)
        + _ar1(rng, n, 0.97, 0.6)
    )
    clouds = np.clip(0.55 + _ar1(rng, n, 0.95, 0.08), 0.05, 1.0)
    daylight = np.clip(np.sin(np.pi * (hour - 7) / 11), 0.0, None)
    solar = daylight * (250.0 + 450.0 * day / DAYS) * (1.0 - 0.8 * clouds)
    humidity = np.clip(
        78.0
        - 1.8 * (temperature - temperature.mean())
        + 15.0 * (clouds - 0.55)
        + rng.normal(0.0, 2.0, n),
        18.0,
        100.0,
    )
    # load: base + occupancy + heating - self-consumed solar + noise
    working = (weekday < 5) & (hour >= 8) & (hour < 18)
    occupancy = np.where(working, 85.0, 0.0) + np.where((weekday < 5) & (hour == 7), 35.0, 0.0)
    occupancy += np.where(weekday >= 5, 8.0 * daylight, 0.0)
    heating = 4.2 * np.clip(15.0 - temperature, 0.0, None)
    load = 60.0 + occupancy + heating - 0.03 * solar + _ar1(rng, n, 0.8, 3.0)
    dates = [(START + timedelta(hours=int(i))).strftime("%Y-%m-%d %H:%M") for i in t]
    values = np.column_stack([temperature, humidity, solar, load])
    return dates, values


def write(path: Path) -> None:
    dates, values = make()
    lines = ["date,temperature_c,humidity_pct,solar_wm2,load_kw"]
    for date, (temp, hum, sol, load) in zip(dates, values, strict=True):
        lines.append(f"{date},{temp:.1f},{hum:.1f},{sol:.0f},{load:.1f}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    write(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_OUTPUT)
