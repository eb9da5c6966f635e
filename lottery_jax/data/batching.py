"""Batch order as a pure function of (data key, epoch), so any step's batch can be rebuilt.

Step s of a run with E-sized epochs reads positions [b*B, (b+1)*B) of the permutation of
epoch s // steps_per_epoch, where b = s % steps_per_epoch. The last partial batch of an
epoch is dropped. Nothing here holds state: resuming at step s gives the same batches.
"""

import jax
import numpy as np


def steps_per_epoch(num_examples: int, batch_size: int) -> int:
  """Full batches per epoch (at least 1: a batch larger than the data takes all of it)."""
  return max(1, num_examples // batch_size)


def epoch_permutation(data_key, epoch: int, num_examples: int) -> np.ndarray:
  """The example order of `epoch`: a permutation of range(num_examples) drawn from
  fold_in(data_key, epoch)."""
  key = jax.random.fold_in(data_key, epoch)
  return np.asarray(jax.random.permutation(key, num_examples))


def batch_indices(data_key, step: int, num_examples: int, batch_size: int) -> np.ndarray:
  """Indices (B,) of the examples in training step `step`."""
  per_epoch = steps_per_epoch(num_examples, batch_size)
  epoch, position = divmod(step, per_epoch)
  order = epoch_permutation(data_key, epoch, num_examples)
  size = min(batch_size, num_examples)
  return order[position * size:(position + 1) * size]


class EpochCache:
  """Memoises the current epoch's permutation for a host loop (a pure cache, no RNG state)."""

  def __init__(self, data_key, num_examples: int, batch_size: int):
    self.data_key, self.num_examples, self.batch_size = data_key, num_examples, batch_size
    self._epoch, self._order = None, None

  def indices(self, step: int) -> np.ndarray:
    per_epoch = steps_per_epoch(self.num_examples, self.batch_size)
    epoch, position = divmod(step, per_epoch)
    if epoch != self._epoch:
      self._epoch = epoch
      self._order = epoch_permutation(self.data_key, epoch, self.num_examples)
    size = min(self.batch_size, self.num_examples)
    return self._order[position * size:(position + 1) * size]
