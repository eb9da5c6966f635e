"""Class-stratified random samples of a split, drawn from an explicit key.

A class-folder source yields its splits in class order, so a prefix of a split is a sample of
its first classes. Every subset a run takes (the validation hold-out, `data.train_examples`,
the analyses' examples) is drawn here instead: `stratified_order` puts a split in an order
whose every prefix, and every slice of consecutive examples, holds each class within one
example of the others (while a class has examples left).
"""

import jax
import numpy as np

from lottery_jax.errors import UserInputError


def stratified_order(labels, num_classes: int, key) -> np.ndarray:
  """int64 (N,): a permutation of range(N) that deals the classes round-robin.

  Each class's indices are shuffled with its own key (fold_in(key, class)); round i takes
  the i-th index of every class that still has one, in one shuffled class order
  (fold_in(key, C)). So any n consecutive entries (a prefix, a batch) hold floor(n / C) or
  ceil(n / C) examples of every class as long as the smallest class lasts, and the draw is a
  pure function of (labels, key).
  """
  labels = np.asarray(labels)
  per_class = []
  for c in range(num_classes):
    idx = np.flatnonzero(labels == c)
    perm = np.asarray(jax.random.permutation(jax.random.fold_in(key, c), len(idx)))
    per_class.append(idx[perm])
  # rank of class c's j-th index = j * C + (c's place in one shuffled class order): sorting
  # by it deals round 0 first, then round 1, ..., always in the same class order.
  place = np.argsort(np.asarray(jax.random.permutation(jax.random.fold_in(key, num_classes),
                                                       num_classes)))
  ranks = np.concatenate([np.arange(len(p)) * num_classes + place[c]
                          for c, p in enumerate(per_class)])
  indices = np.concatenate(per_class)
  return indices[np.argsort(ranks, kind="stable")].astype(np.int64)


def balanced_sample(labels, total: int, num_classes: int, key, field: str) -> np.ndarray:
  """Sorted indices of `total` examples, a stratified random draw (the first `total` of
  `stratified_order`). UserInputError naming `field` when the split has fewer examples, or
  a class too few to stay within one example of the others."""
  labels = np.asarray(labels)
  if total > len(labels):
    raise UserInputError(f"{field}={total} is more than the {len(labels)} examples available")
  counts = np.bincount(labels, minlength=num_classes)
  need = total // num_classes
  if counts.min() < need:
    raise UserInputError(f"{field}={total} needs at least {need} examples of every class, "
                         f"but class {int(counts.argmin())} has {int(counts.min())}")
  return np.sort(stratified_order(labels, num_classes, key)[:total])


def examples_per_class(labels, num_classes: int) -> list[int]:
  """How many examples of each class `labels` holds (recorded with every analysis)."""
  return np.bincount(np.asarray(labels), minlength=num_classes).astype(int).tolist()
