"""Real training data grouped by class, with per-class batches drawn inside jit."""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from lottery_jax.errors import UserInputError


class ClassIndex(NamedTuple):
  """Real images sorted by class, on device.

  Attributes:
    images_NxHxWxC: float32 train images, class 0 first, then class 1, ...
    labels_N: int32 labels of images_NxHxWxC (non-decreasing).
    start_C: int32 index of each class's first image.
    count_C: int32 number of images of each class.
  """
  images_NxHxWxC: jax.Array
  labels_N: jax.Array
  start_C: jax.Array
  count_C: jax.Array

  @property
  def num_classes(self) -> int:
    return self.start_C.shape[0]

  @property
  def largest_class(self) -> int:
    """Images in the largest class (a host int; use it as `max_count`)."""
    return int(np.max(np.asarray(self.count_C)))

  @property
  def smallest_class(self) -> int:
    return int(np.min(np.asarray(self.count_C)))


def build(images_NxHxWxC: np.ndarray, labels_N: np.ndarray, num_classes: int) -> ClassIndex:
  """Sort the real train split by class; every class must have at least one image."""
  order = np.argsort(labels_N, kind="stable")
  labels_sorted = np.asarray(labels_N)[order].astype(np.int32)
  count_C = np.bincount(labels_sorted, minlength=num_classes).astype(np.int32)
  if (count_C == 0).any():
    raise UserInputError(f"class {int(np.argmin(count_C))} has no training images")
  start_C = np.concatenate([[0], np.cumsum(count_C)[:-1]]).astype(np.int32)
  return ClassIndex(jnp.asarray(np.asarray(images_NxHxWxC)[order], jnp.float32),
                    jnp.asarray(labels_sorted), jnp.asarray(start_C), jnp.asarray(count_C))


def sample_indices(key, index: ClassIndex, per_class: int, max_count: int):
  """int32 (C, per_class): for each class, `per_class` distinct random images of it.

  `max_count` (static) must be at least the largest class and `per_class` at most the
  smallest; draws are a pure function of `key`.
  """

  def one_class(k, start, count):
    u = jax.random.uniform(k, (max_count,))
    u = jnp.where(jnp.arange(max_count) < count, u, 2.0)  # Positions past the class go last.
    _, positions = jax.lax.top_k(-u, per_class)
    return start + positions

  keys = jax.random.split(key, index.num_classes)
  return jax.vmap(one_class)(keys, index.start_C, index.count_C)


def sample(key, index: ClassIndex, per_class: int, max_count: int):
  """float32 (C, per_class, H, W, C_in) real images, `per_class` distinct ones per class."""
  return index.images_NxHxWxC[sample_indices(key, index, per_class, max_count)]


def sample_class(key, index: ClassIndex, label, per_class: int, max_count: int):
  """float32 (per_class, H, W, C_in): distinct random real images of class `label` (a traced
  int32 scalar is fine)."""
  u = jax.random.uniform(key, (max_count,))
  u = jnp.where(jnp.arange(max_count) < index.count_C[label], u, 2.0)
  _, positions = jax.lax.top_k(-u, per_class)
  return index.images_NxHxWxC[index.start_C[label] + positions]
