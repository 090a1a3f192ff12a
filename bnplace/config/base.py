"""Shared base for every config model: strict keys, frozen values.

In: nothing. Out: `Strict`, the pydantic base class that every section of the schema derives
from, so that an unknown key is an error (with a "did you mean") rather than silently ignored.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
