"""What every data source returns: a `RawDataset` of float32 NHWC pixels in [0, 1], and the
helpers the sources share (content fingerprint, cache directory, one-line error text)."""

from __future__ import annotations

import hashlib
import os
import pathlib
from typing import NamedTuple

import numpy as np


class Split(NamedTuple):
  """One split of a dataset.

  Attributes:
    images: float32 (N, H, W, C) pixels in [0, 1].
    labels: int32 (N,) class indices.
  """
  images: np.ndarray
  labels: np.ndarray


class RawDataset(NamedTuple):
  """A dataset before preprocessing.

  Attributes:
    name: short name, e.g. 'digits', 'cifar10' or an image folder's stem.
    train: the training split.
    test: the test split.
    num_classes: number of classes; labels are in [0, num_classes).
    class_names: name of each class, indexed by label.
    fingerprint: short hex hash of the data's content, a cache key for preprocessing.
  """
  name: str
  train: Split
  test: Split
  num_classes: int
  class_names: tuple[str, ...]
  fingerprint: str


def default_cache_dir() -> pathlib.Path:
  """`$LOTTERY_JAX_CACHE` if set, else `~/.cache/lottery_jax`."""
  env = os.environ.get("LOTTERY_JAX_CACHE")
  if env:
    return pathlib.Path(env).expanduser()
  return pathlib.Path.home() / ".cache" / "lottery_jax"


def fingerprint(*arrays: np.ndarray) -> str:
  """Short sha256 of the arrays' dtypes, shapes and bytes."""
  h = hashlib.sha256()
  for a in arrays:
    a = np.ascontiguousarray(a)
    h.update(f"{a.dtype.str}{a.shape};".encode())
    h.update(memoryview(a).cast("B"))
  return h.hexdigest()[:16]


def one_line(e: BaseException) -> str:
  """The exception's message on one line (or its type name when empty)."""
  text = " ".join(str(e).split())
  return text or type(e).__name__


def raw_from_uint8(name, train_images, train_labels, test_images, test_labels, class_names,
                   fingerprint) -> RawDataset:
  """Builds a RawDataset from uint8 NHWC images, scaling pixels to [0, 1]."""

  def split(images, labels):
    return Split(images.astype(np.float32) / np.float32(255.0), labels.astype(np.int32))

  return RawDataset(name=name, train=split(train_images, train_labels),
                    test=split(test_images, test_labels), num_classes=len(class_names),
                    class_names=tuple(class_names), fingerprint=fingerprint)
