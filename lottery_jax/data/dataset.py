"""A dataset ready for training: real train/test arrays after preprocessing."""

from typing import NamedTuple

import ml_collections
import numpy as np

from lottery_jax.data import preprocess, sources
from lottery_jax.errors import UserInputError


class Dataset(NamedTuple):
  """Preprocessed real data held on the host.

  Attributes:
    name: source name ('digits', 'cifar10', 'cifar10-jpeg', ...).
    train_images: float32 (N, H, W, C) after preprocessing; train_labels: int32 (N,).
    test_images, test_labels: the same for the test split.
    num_classes: number of classes.
    preprocessing: what was applied (preprocess.Preprocessing).
    fingerprint: short hex hash of the raw images' and labels' content (pins a run's data).
  """
  name: str
  train_images: np.ndarray
  train_labels: np.ndarray
  test_images: np.ndarray
  test_labels: np.ndarray
  num_classes: int
  preprocessing: preprocess.Preprocessing
  fingerprint: str = ""

  @property
  def image_shape(self) -> tuple[int, int, int]:
    return tuple(self.train_images.shape[1:])


def check_classes(raw: sources.RawDataset) -> None:
  """UserInputError unless there are at least 2 classes and every class has images in both
  splits (a class missing from one split would silently skew training or evaluation)."""
  if raw.num_classes < 2:
    raise UserInputError(f"data source {raw.name} has {raw.num_classes} class(es); "
                         "classification needs at least 2")
  for split in ("train", "test"):
    labels = getattr(raw, split).labels
    missing = np.setdiff1d(np.arange(raw.num_classes), labels)
    if missing.size:
      names = [raw.class_names[i] for i in missing[:5]]
      raise UserInputError(f"data source {raw.name}: the {split} split has no images of "
                           f"class(es) {names}; every class needs images in both splits")


def class_balanced_prefix(labels, total: int, num_classes: int) -> np.ndarray:
  """Sorted indices of the first total // num_classes examples of every class, in source
  order (data.train_examples); UserInputError if a class has fewer or total < num_classes."""
  per_class = total // num_classes
  if per_class < 1:
    raise UserInputError(f"data.train_examples={total} gives no example per class; use 0 (the "
                         f"whole train split) or at least {num_classes}")
  chosen = []
  for c in range(num_classes):
    idx = np.flatnonzero(labels == c)
    if len(idx) < per_class:
      raise UserInputError(f"data.train_examples={total} needs {per_class} train examples of "
                           f"class {c}, which has {len(idx)}")
    chosen.append(idx[:per_class])
  return np.sort(np.concatenate(chosen))


def load_dataset(data_config: ml_collections.ConfigDict, preprocess_kind: str | None = None,
                 zca_eps: float | None = None) -> Dataset:
  """Load `data_config.source` and preprocess it as `data_config.preprocess` says (or as
  `preprocess_kind` / `zca_eps` override, e.g. to match a distilled set)."""
  cache_dir = data_config.cache_dir or None
  raw = sources.load_source(data_config.source, data_dir=data_config.data_dir or None,
                            manual_dir=data_config.manual_dir or None, cache_dir=cache_dir)
  check_classes(raw)
  kind = preprocess_kind or data_config.preprocess
  eps = data_config.zca_eps if zca_eps is None else zca_eps
  prep = preprocess.fit_preprocessing(raw, kind, zca_eps=eps, cache_dir=cache_dir)
  train_images, train_labels = raw.train.images, raw.train.labels
  if data_config.get("train_examples", 0):
    keep = class_balanced_prefix(train_labels, data_config.train_examples, raw.num_classes)
    train_images, train_labels = train_images[keep], train_labels[keep]
  return Dataset(
      name=raw.name,
      train_images=np.asarray(preprocess.apply_preprocessing(prep, train_images), np.float32),
      train_labels=train_labels.astype(np.int32),
      test_images=np.asarray(preprocess.apply_preprocessing(prep, raw.test.images), np.float32),
      test_labels=raw.test.labels.astype(np.int32),
      num_classes=raw.num_classes,
      preprocessing=prep,
      fingerprint=raw.fingerprint)
