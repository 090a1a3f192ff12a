"""Config: YAML file -> validated `Config` (see `load.py`); the schema lives in `schema.py`.

In: a path to a YAML file (and `--set` overrides). Out: `LoadedConfig`. Reading the file is the
only effect here; everything after it is pure.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from bnplace.config.load import LoadedConfig, parse_config
from bnplace.config.schema import Config
from bnplace.names.errors import ConfigError, Problem

__all__ = ["Config", "LoadedConfig", "load_config", "parse_config"]


def load_config(path: str | Path, sets: Sequence[str] = ()) -> LoadedConfig:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([Problem("config file not found", file=str(path))]) from None
    except (IsADirectoryError, PermissionError, UnicodeDecodeError) as exc:
        raise ConfigError([Problem(f"cannot read the config: {exc}", file=str(path))]) from None
    return parse_config(text, str(path), sets)
