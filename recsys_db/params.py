"""Job configs as registry params: the base of every job's config dataclass.

A job's config (CFConfig, TrainConfig, RankerConfig, InterestJobConfig) is a dataclass that
checks its values in `__post_init__` and travels as a flat JSON object: in the settings file
(`[jobs.NAME]`), in CLI overrides and in `recsys.model_versions.params`. `from_params` is the
one way back from such an object: a key that is not a field is an error (a renamed or removed
option must not be dropped silently), and so is a value the config rejects.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, Self


class Params:
    """Mixin for config dataclasses: `to_params()` / `from_params()` as flat JSON objects."""

    def to_params(self) -> dict[str, Any]:
        """The config as a JSON-ready dict of its fields."""
        return dataclasses.asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> Self:
        """The config from `params` (its fields; omitted ones take their defaults).

        Raises ValueError naming unknown keys, or the value the config rejects."""
        known = field_names(cls)
        unknown = set(params) - known
        if unknown:
            raise ValueError(f"unknown option(s) {sorted(unknown)} for {cls.__name__}; known: "
                             f"{', '.join(sorted(known)) or 'none'}")
        try:
            return cls(**params)
        except TypeError as exc:  # e.g. a value of the wrong type compared with a number
            raise ValueError(f"{cls.__name__}: {exc}") from None

    @classmethod
    def option_names(cls) -> set[str]:
        """The keys `from_params` accepts."""
        return field_names(cls)


def field_names(cls: type) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
