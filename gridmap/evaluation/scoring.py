"""Composite scores 综合评分, bands 等级 and ranks 排名 (DOMAIN.md §7).

score = 100 × Σ wᵢ·rᵢ / Σ wᵢ over the subject's scored rates that are defined (NaN rates are left out and
the rest re-weighted); lower-is-better rates enter as 1 − r. The weights per kind of subject and the band
thresholds come from ``data/evaluation/scoring.yaml``, a file that overrides parts of it, or a
:class:`Scoring` built in Python.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from gridmap.evaluation.definitions import BY_COLUMN, KINDS, VOLUME, EvaluationError, subject_kind

DEFAULT_FILE = Path(__file__).resolve().parents[2] / "data" / "evaluation" / "scoring.yaml"


class BadScoring(EvaluationError):
    """A scoring definition that cannot be used; the message names the file and the field."""


@dataclass(frozen=True)
class Scoring:
    """Weights per kind of subject (kind → rate column → weight) and bands ((letter, lowest score), best
    first, the last starting at 0). Checked when built: raises :class:`BadScoring`."""

    weights: Mapping[str, Mapping[str, float]]
    bands: tuple[tuple[str, float], ...]
    source: str = field(default="Scoring", compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "weights", _weights(self.weights, self.source))
        object.__setattr__(self, "bands", _bands(self.bands, self.source))

    def band(self, score: float) -> str | None:
        return next((letter for letter, lowest in self.bands if score >= lowest), None) if score == score else None

    def as_dict(self) -> dict[str, Any]:
        return {"bands": dict(self.bands), "weights": {k: dict(v) for k, v in self.weights.items()}}


def load_scoring(path: str | Path | None = None) -> Scoring:
    """The default scoring, with the parts ``path`` (a YAML file) defines replacing it.

    Raises
    ------
    BadScoring
        The file is missing, not YAML, or defines something unknown or out of range; the message says
        which file and field.
    """
    default = _read(DEFAULT_FILE)
    if path is None:
        return _build(default, str(DEFAULT_FILE))
    spec = _read(Path(path))
    unknown = set(spec) - {"bands", "weights"}
    if unknown:
        raise BadScoring(f"{path}: unknown field {sorted(unknown)[0]!r}: a scoring file has 'bands' and 'weights'")
    weights = spec.get("weights") or {}
    if not isinstance(weights, Mapping):
        raise BadScoring(f"{path}: weights: must map a kind of subject ({', '.join(KINDS)}) to rate weights")
    merged = {"bands": spec.get("bands", default["bands"]), "weights": {**default["weights"], **weights}}
    return _build(merged, str(path))


def score(frame: pd.DataFrame, *, by: str, scoring: Scoring) -> pd.DataFrame:
    """Add ``score`` (0–100, 2 decimals; NaN when no scored rate is defined), ``band`` and ``rank``
    (1 = best; ties broken by the larger volume — due cases, reports, dispatches, filings — and equal on
    both share a rank); rows sorted by rank."""
    kind = subject_kind(by)
    weights = pd.Series(dict(scoring.weights[kind]), dtype=float)
    values = frame.reindex(columns=weights.index).astype(float)
    lower = [c for c in weights.index if BY_COLUMN[c].better == "lower"]
    values[lower] = 1 - values[lower]
    defined = values.notna()
    total = defined.mul(weights).sum(axis=1)
    result = frame.copy()
    result["score"] = (100 * values.fillna(0).mul(weights).sum(axis=1) / total.where(total > 0)).round(2)
    result["band"] = pd.Series([scoring.band(s) for s in result["score"]], index=result.index, dtype=object)
    volume = result[VOLUME[kind]] if VOLUME[kind] in result else pd.Series(0, index=result.index)
    subject = result["subject"] if "subject" in result else result.index.to_series()
    order = pd.DataFrame({"score": result["score"].to_numpy(), "volume": volume.to_numpy(),
                          "subject": subject.astype(str).to_numpy()})
    order = order.sort_values(["score", "volume", "subject"], ascending=[False, False, True], na_position="last")
    fresh = (order["score"] != order["score"].shift()) | (order["volume"] != order["volume"].shift())
    rank = pd.Series(np.arange(1, len(order) + 1), index=order.index).where(fresh).ffill()
    result = result.iloc[order.index]
    result["rank"] = pd.array(rank.where(order["score"].notna()).to_numpy(), dtype="Int64")
    return result


def _read(path: Path) -> dict:
    try:
        spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise BadScoring(f"{path}: cannot read the scoring file ({error.strerror})") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise BadScoring(f"{path}: not valid YAML{where}: {getattr(error, 'problem', error)}") from None
    if not isinstance(spec, Mapping):
        raise BadScoring(f"{path}: a scoring file is a mapping with 'bands' and 'weights'")
    return dict(spec)


def _build(spec: Mapping, where: str) -> Scoring:
    bands = spec.get("bands")
    if not isinstance(bands, Mapping):
        raise BadScoring(f"{where}: bands: must map each band to its lowest score, e.g. {{A: 90, B: 75, E: 0}}")
    return Scoring(weights=spec.get("weights") or {}, bands=tuple(bands.items()), source=where)


def _number(value: Any, where: str, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise BadScoring(f"{where}: must be a number from {low:g} to {high:g} (got {value!r})")
    return float(value)


def _weights(weights: Mapping, where: str) -> dict[str, dict[str, float]]:
    checked = {}
    for kind in KINDS:
        rates = weights.get(kind)
        if not isinstance(rates, Mapping) or not rates:
            raise BadScoring(f"{where}: weights.{kind}: give the weights of the {kind} rates")
        scorable = [k.column for k in BY_COLUMN.values() if kind in k.kinds and k.scorable]
        for column in rates:
            if column not in scorable:
                raise BadScoring(f"{where}: weights.{kind}.{column}: not a scored {kind} rate; use "
                                 f"{', '.join(scorable)}")
        checked[kind] = {c: _number(w, f"{where}: weights.{kind}.{c}", 0, 1e6) for c, w in rates.items()}
        if not any(checked[kind].values()):
            raise BadScoring(f"{where}: weights.{kind}: at least one weight must be above 0")
    unknown = set(weights) - set(KINDS)
    if unknown:
        raise BadScoring(f"{where}: weights.{sorted(unknown)[0]}: unknown kind; use {', '.join(KINDS)}")
    return checked


def _bands(bands: tuple, where: str) -> tuple[tuple[str, float], ...]:
    checked = tuple((str(letter), _number(lowest, f"{where}: bands.{letter}", 0, 100)) for letter, lowest in bands)
    lows = [low for _, low in checked]
    if not checked or lows != sorted(lows, reverse=True) or len(set(lows)) < len(lows):
        raise BadScoring(f"{where}: bands: thresholds must fall from the best band to the worst (got {dict(checked)})")
    if lows[-1] != 0:
        raise BadScoring(f"{where}: bands.{checked[-1][0]}: the last band must start at 0, so every score gets one")
    return checked
