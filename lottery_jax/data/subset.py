"""Class-balanced random subsets of a real split (the stand-in for a distilled set)."""

import jax
import numpy as np

from lottery_jax.data.distilled_npz import DistilledSet
from lottery_jax.errors import UserInputError


def random_class_subset(images_NHWC, labels, per_class: int, key, num_classes: int,
                        source: str = "") -> DistilledSet:
  """`per_class` examples of every class, drawn without replacement with `key`, sorted by
  class like a published distilled set."""
  rng_keys = jax.random.split(key, num_classes)
  chosen = []
  for c in range(num_classes):
    idx = np.flatnonzero(labels == c)
    if len(idx) < per_class:
      raise UserInputError(f"class {c} has only {len(idx)} training examples, fewer than "
                           f"distilled.images_per_class={per_class}")
    pick = np.asarray(jax.random.choice(rng_keys[c], len(idx), (per_class,), replace=False))
    chosen.append(idx[np.sort(pick)])
  chosen = np.concatenate(chosen)
  metadata = {"method": "random real subset (class-balanced; a stand-in for a distilled set)",
              "images_per_class": per_class, "source_dataset": source}
  return DistilledSet(np.asarray(images_NHWC[chosen], np.float32),
                      np.asarray(labels[chosen], np.int32), metadata)
