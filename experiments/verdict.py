"""Verdicts with their uncertainty: a comparison of two quantities measured over replicates
reads 'not distinguishable' unless their mean ± std intervals are apart, and one replicate
decides nothing."""

from typing import NamedTuple, Sequence

import numpy as np

MIN_REPLICATES = 2  # Fewer replicates than this decide nothing.


class Spread(NamedTuple):
  """A quantity over replicates: mean, std (population, 0 for one value) and n."""
  mean: float
  std: float
  n: int

  def text(self, scale: float = 1.0, digits: int = 3, unit: str = "") -> str:
    return (f"{scale * self.mean:.{digits}f} ± {scale * self.std:.{digits}f}{unit} "
            f"(n = {self.n})")


def spread(values: Sequence[float]) -> Spread:
  v = np.asarray(list(values), np.float64)
  if v.size == 0:
    raise ValueError("no replicate to summarise")
  return Spread(float(v.mean()), float(v.std()), int(v.size))


def of_record(record: dict, name: str) -> Spread:
  """The Spread of field `name` of a results record: its per-replicate list `<name>s` when
  stored, else the mean with `<name>_std` (0 if absent) and `replicates` (1 if absent)."""
  values = record.get(name + "s")
  if isinstance(values, list) and values:
    return spread(values)
  return Spread(float(record[name]), float(record.get(name + "_std", 0.0)),
                int(record.get("replicates", 1)))


def of_summary(stat: dict | None) -> Spread | None:
  """The Spread of a {'mean', 'std', 'values'} summary (stability.summaries.sharpness_by_producer);
  None when it is absent or was not measured (mean None)."""
  if not stat or stat.get("mean") is None:
    return None
  return Spread(stat["mean"], stat["std"], len(stat["values"]))


def accuracy(record: dict) -> Spread:
  """A results.json producer round's test accuracy over its replicates (`accuracies`)."""
  return spread(record.get("accuracies") or [record["accuracy_mean"]])


def order(a: Spread, b: Spread) -> int:
  """-1 if a is below b, 1 if above, 0 if not distinguishable: fewer than MIN_REPLICATES on
  either side, or mean ± std intervals that overlap."""
  if min(a.n, b.n) < MIN_REPLICATES:
    return 0
  if a.mean + a.std < b.mean - b.std:
    return -1
  if a.mean - a.std > b.mean + b.std:
    return 1
  return 0


def compare(name_a: str, a: Spread, name_b: str, b: Spread, scale: float = 1.0,
            digits: int = 3, unit: str = "") -> str:
  """'A x ± s (n) vs B y ± t (n): A lower / A higher / not distinguishable (...)'."""
  head = f"{name_a} {a.text(scale, digits, unit)} vs {name_b} {b.text(scale, digits, unit)}: "
  if min(a.n, b.n) < MIN_REPLICATES:
    return head + (f"not distinguishable (n = {min(a.n, b.n)}: one replicate decides "
                   "nothing)")
  o = order(a, b)
  if o == 0:
    return head + "not distinguishable (the mean ± std intervals overlap)"
  return head + f"{name_a} {'lower' if o < 0 else 'higher'}"


def above(a: Spread, threshold: float) -> int:
  """1 if the whole interval is above `threshold`, -1 if below or at it, 0 if it straddles
  (or n < MIN_REPLICATES and the mean is not clear of it by the std)."""
  if a.mean - a.std > threshold:
    return 1
  if a.mean + a.std <= threshold:
    return -1
  return 0
