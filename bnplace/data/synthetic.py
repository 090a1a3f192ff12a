"""Deterministic synthetic data, seeded from the config.

In: a `SyntheticData` data section. Out: a `RawSeries` (forecasting generators) or `RawSequences`
(the `shapes` classification generator) in original units. The same data section always gives the
same array (numpy's PCG64 generator seeded with `section.seed`; no global random state).

Forecasting generators (the target is always the first column):
    sine_mix      channels share three latent periods, each channel its own amplitudes and
                  phases, plus noise: the other channels are noisy views of the same cycle
    ar            a stationary AR(p) target (coefficients drawn through partial
                  autocorrelations, so always stationary) driven by features-1 exogenous
                  AR(1) channels at lag 1
    mackey_glass  the Mackey-Glass delay equation (tau 17 by default), sampled every time unit
    lorenz        the Lorenz system (sigma 10, rho 28, beta 8/3); channels x, y, z; target x
    distractors   the target depends on `informative` driver channels at lags beyond the
                  horizon; the other channels are distractors of the same kind of process
                  (same marginal statistics), so only their relation to the target tells
                  them apart: a Squeeze-Excite block has something to select
Classification generator:
    shapes        `length` sequences of `window` steps; a class is a waveform (sine, square,
                  sawtooth) at a frequency level; random phase, amplitude, offset and noise;
                  every channel carries the class waveform with its own phase
"""

from __future__ import annotations

import math

import numpy as np

from bnplace.config.data import SyntheticData
from bnplace.data.raw import RawSequences, RawSeries

_BURN_IN = 300


def generate(section: SyntheticData) -> RawSeries | RawSequences:
    """The raw data of a synthetic data section (dispatch on `section.generator`)."""
    rng = np.random.default_rng(section.seed)
    origin = f"synthetic {section.generator} (seed {section.seed})"
    if section.generator == "shapes":
        x, labels = shapes(
            rng, section.length, section.window, section.features, section.classes, section.noise
        )
        names = tuple(f"x{i + 1}" for i in range(section.features))
        return RawSequences(x, labels, names, origin)
    if section.generator == "sine_mix":
        values = sine_mix(rng, section.length, section.features)
        names = ("y", *(f"x{i}" for i in range(1, section.features)))
    elif section.generator == "ar":
        values = ar(rng, section.length, section.features, section.ar_order)
        names = ("y", *(f"x{i}" for i in range(1, section.features)))
    elif section.generator == "mackey_glass":
        values = mackey_glass(rng, section.length, section.tau)[:, None]
        names = ("y",)
    elif section.generator == "lorenz":
        values = lorenz(rng, section.length)[:, : section.features]
        names = ("x", "y", "z")[: section.features]
    else:  # distractors
        values, names = distractors(
            rng, section.length, section.features, section.informative, section.horizon
        )
    values = _add_noise(rng, values, section.noise)
    return RawSeries(
        values=values,
        columns=names,
        feature_names=names,
        target_names=names[:1],
        origin=origin,
    )


def _add_noise(rng: np.random.Generator, values: np.ndarray, noise: float) -> np.ndarray:
    if noise <= 0:
        return values
    scale = values.std(axis=0, keepdims=True) * noise
    return values + rng.standard_normal(values.shape) * scale


def sine_mix(rng: np.random.Generator, length: int, channels: int) -> np.ndarray:
    """(length, channels): three shared periods (10-20, 30-60, 80-160 steps) mixed per channel."""
    periods = rng.uniform([10.0, 30.0, 80.0], [20.0, 60.0, 160.0])
    amplitudes = rng.uniform(0.3, 1.0, size=(channels, 3))
    phases = rng.uniform(0.0, 2 * math.pi, size=(channels, 3))
    t = np.arange(length, dtype=np.float64)[:, None, None]
    waves = amplitudes * np.sin(2 * math.pi * t / periods[None, None, :] + phases)
    return waves.sum(axis=2)


def ar_coefficients(rng: np.random.Generator, order: int) -> np.ndarray:
    """Stationary AR(p) coefficients from partial autocorrelations in (-1, 1) (Durbin-Levinson)."""
    pacf = np.concatenate([rng.uniform(0.5, 0.9, size=1), rng.uniform(-0.5, 0.5, size=order - 1)])
    phi = np.zeros(0)
    for k, kappa in enumerate(pacf):
        phi = np.concatenate([phi - kappa * phi[::-1], [kappa]]) if k else np.array([kappa])
    return phi


def ar(rng: np.random.Generator, length: int, channels: int, order: int) -> np.ndarray:
    """(length, channels): column 0 an AR(order) series driven by the other columns at lag 1."""
    from scipy.signal import lfilter  # here: importing scipy.signal is ~1 s of `bnplace plan`

    n = length + _BURN_IN
    drivers = lfilter([1.0], [1.0, -0.8], rng.standard_normal((n, channels - 1)), axis=0)
    betas = rng.uniform(0.3, 0.6, size=channels - 1) * rng.choice([-1.0, 1.0], size=channels - 1)
    forcing = rng.standard_normal(n)
    forcing[1:] += drivers[:-1] @ betas
    phi = ar_coefficients(rng, order)
    target = lfilter([1.0], np.concatenate([[1.0], -phi]), forcing)
    return np.column_stack([target, drivers])[_BURN_IN:]


def mackey_glass(
    rng: np.random.Generator,
    length: int,
    tau: int = 17,
    beta: float = 0.2,
    gamma: float = 0.1,
    power: float = 10.0,
    substeps: int = 10,
) -> np.ndarray:
    """(length,): dx/dt = beta x(t-tau) / (1 + x(t-tau)^n) - gamma x, Euler, sampled every 1."""
    dt = 1.0 / substeps
    lag = tau * substeps
    history = list(1.2 + 0.1 * rng.uniform(-1.0, 1.0, size=lag + 1))
    x = history[-1]
    out = np.empty(length)
    total = (length + _BURN_IN) * substeps
    for step in range(total):
        delayed = history[step]  # x(t - tau): the buffer grows by one per step
        x = x + dt * (beta * delayed / (1.0 + delayed**power) - gamma * x)
        history.append(x)
        sample = step // substeps - _BURN_IN
        if step % substeps == substeps - 1 and sample >= 0:
            out[sample] = x
    return out


def lorenz(
    rng: np.random.Generator,
    length: int,
    sigma: float = 10.0,
    rho: float = 28.0,
    beta: float = 8.0 / 3.0,
    dt: float = 0.01,
    substeps: int = 5,
) -> np.ndarray:
    """(length, 3): the Lorenz system by RK4 with step dt, sampled every `substeps` steps."""

    def f(x: float, y: float, z: float) -> tuple[float, float, float]:
        return sigma * (y - x), x * (rho - z) - y, x * y - beta * z

    x, y, z = (float(v) for v in rng.uniform(-10.0, 10.0, size=3) + np.array([0.0, 0.0, 25.0]))
    out = np.empty((length, 3))
    for i in range(-_BURN_IN, length):
        for _ in range(substeps):
            k1 = f(x, y, z)
            k2 = f(x + dt / 2 * k1[0], y + dt / 2 * k1[1], z + dt / 2 * k1[2])
            k3 = f(x + dt / 2 * k2[0], y + dt / 2 * k2[1], z + dt / 2 * k2[2])
            k4 = f(x + dt * k3[0], y + dt * k3[1], z + dt * k3[2])
            x += dt / 6 * (k1[0] + 2 * k2[0] + 2 * k3[0] + k4[0])
            y += dt / 6 * (k1[1] + 2 * k2[1] + 2 * k3[1] + k4[1])
            z += dt / 6 * (k1[2] + 2 * k2[2] + 2 * k3[2] + k4[2])
        if i >= 0:
            out[i] = (x, y, z)
    return out


def distractors(
    rng: np.random.Generator, length: int, channels: int, informative: int, horizon: int
) -> tuple[np.ndarray, tuple[str, ...]]:
    """Target `y` = sum of (nonlinear) lagged drivers + a weak own memory; the rest distract.

    Every non-target channel is an AR(1) process with a slow sine, with the same coefficient
    and scale, so drivers and distractors look alike on their own. Driver j acts at lag
    horizon + 2 + 3j, so a window ending now still sees the cause of the value `horizon` ahead.
    """
    from scipy.signal import lfilter  # here, as in `ar`

    n = length + _BURN_IN
    others = channels - 1
    t = np.arange(n)[:, None]
    periods = rng.uniform(20.0, 90.0, size=others)
    slow = np.sin(2 * math.pi * t / periods + rng.uniform(0, 2 * math.pi, size=others))
    series = lfilter([1.0], [1.0, -0.7], rng.standard_normal((n, others)), axis=0)
    series = series / series.std(axis=0) + slow
    driver_cols = np.sort(rng.choice(others, size=informative, replace=False))
    signal = np.zeros(n)
    for j, col in enumerate(driver_cols):
        lag = horizon + 2 + 3 * j
        lagged = np.concatenate([np.zeros(lag), series[:-lag, col]])
        signal += np.tanh(1.5 * lagged) if j % 2 == 0 else 0.8 * lagged
    target = lfilter([1.0], [1.0, -0.3], signal)
    names = ["y"]
    d = k = 0
    for col in range(others):
        if col in driver_cols:
            d += 1
            names.append(f"driver{d}")
        else:
            k += 1
            names.append(f"noise{k}")
    return np.column_stack([target, series])[_BURN_IN:], tuple(names)


_WAVES = ("sine", "square", "sawtooth")


def shapes(
    rng: np.random.Generator, n: int, window: int, channels: int, classes: int, noise: float
) -> tuple[np.ndarray, np.ndarray]:
    """(n, window, channels) sequences and (n,) string labels, classes balanced, order shuffled.

    Class c is waveform c % 3 at frequency level c // 3 (2, 4, 6, 8 cycles per window x U(0.85,
    1.15)); each sequence gets a random phase per channel, amplitude U(0.7, 1.3) and offset
    U(-0.5, 0.5); Gaussian noise of std `noise` is added.
    """
    label_index = rng.permutation(np.arange(n) % classes)
    names = np.array([f"{_WAVES[c % 3]}{c // 3 + 1}" for c in range(classes)])
    cycles = (2.0 * (label_index // 3 + 1) * rng.uniform(0.85, 1.15, size=n))[:, None, None]
    phase = rng.uniform(0.0, 1.0, size=(n, 1, channels))
    t = np.arange(window, dtype=np.float64)[None, :, None] / window
    u = (cycles * t + phase) % 1.0  # position within the cycle, 0..1
    waves = np.stack([np.sin(2 * math.pi * u), np.where(u < 0.5, 1.0, -1.0), 2.0 * u - 1.0], axis=0)
    kind = (label_index % 3)[:, None, None]
    x = np.choose(kind, waves)
    x = x * rng.uniform(0.7, 1.3, size=(n, 1, 1)) + rng.uniform(-0.5, 0.5, size=(n, 1, 1))
    x = x + noise * rng.standard_normal(x.shape)
    return x, names[label_index]
