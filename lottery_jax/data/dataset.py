"""A dataset ready for training: real train/test arrays after preprocessing."""

from typing import NamedTuple

import jax
import ml_collections
import numpy as np

from lottery_jax.data import preprocess, sources, stratified
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
    val_images, val_labels: the validation split, a stratified random part of the source's
      train split held out from training (data.validation_examples; empty when 0), for
      choices that must not see the test split.
  """
  name: str
  train_images: np.ndarray
  train_labels: np.ndarray
  test_images: np.ndarray
  test_labels: np.ndarray
  num_classes: int
  preprocessing: preprocess.Preprocessing
  fingerprint: str = ""
  val_images: np.ndarray | None = None
  val_labels: np.ndarray | None = None

  @property
  def has_validation(self) -> bool:
    return self.val_labels is not None and len(self.val_labels) > 0

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


VALIDATION_STREAM, TRAIN_SUBSET_STREAM = 0, 1  # fold_in streams of key(seeds.split).


def split_indices(labels, num_classes: int, validation_examples: int, train_examples: int,
                  split_seed: int) -> tuple[np.ndarray, np.ndarray]:
  """(train indices, validation indices) into the source's train split, both sorted: a
  stratified random validation hold-out of `validation_examples` (0: none), then a
  stratified random `train_examples` of the rest (0: all of it), from key(split_seed)."""
  labels = np.asarray(labels)
  key = jax.random.key(split_seed)
  everything = np.arange(len(labels))
  val = np.zeros(0, np.int64)
  if validation_examples:
    val = stratified.balanced_sample(labels, validation_examples, num_classes,
                                     jax.random.fold_in(key, VALIDATION_STREAM),
                                     "data.validation_examples")
  rest = np.setdiff1d(everything, val)
  if train_examples:
    if train_examples < num_classes:
      raise UserInputError(f"data.train_examples={train_examples} gives no example per class; "
                           f"use 0 (the whole train split) or at least {num_classes}")
    pick = stratified.balanced_sample(labels[rest], train_examples, num_classes,
                                      jax.random.fold_in(key, TRAIN_SUBSET_STREAM),
                                      "data.train_examples")
    rest = rest[pick]
  return rest, val


def load_dataset(data_config: ml_collections.ConfigDict, preprocess_kind: str | None = None,
                 zca_eps: float | None = None, split_seed: int = 0) -> Dataset:
  """Load `data_config.source` and preprocess it as `data_config.preprocess` says (or as
  `preprocess_kind` / `zca_eps` override, e.g. to match a distilled set). The validation
  hold-out and the `data.train_examples` subset are stratified random draws from
  key(split_seed) (config.seeds.split); preprocessing is fitted on the whole train split,
  so distilled sets made from any part of it share its space."""
  cache_dir = data_config.cache_dir or None
  raw = sources.load_source(data_config.source, data_dir=data_config.data_dir or None,
                            manual_dir=data_config.manual_dir or None, cache_dir=cache_dir)
  check_classes(raw)
  kind = preprocess_kind or data_config.preprocess
  eps = data_config.zca_eps if zca_eps is None else zca_eps
  prep = preprocess.fit_preprocessing(raw, kind, zca_eps=eps, cache_dir=cache_dir)
  keep, val = split_indices(raw.train.labels, raw.num_classes,
                            data_config.get("validation_examples", 0),
                            data_config.get("train_examples", 0), split_seed)
  train_images, train_labels = raw.train.images[keep], raw.train.labels[keep]
  val_images = raw.train.images[val]
  return Dataset(
      name=raw.name,
      train_images=np.asarray(preprocess.apply_preprocessing(prep, train_images), np.float32),
      train_labels=train_labels.astype(np.int32),
      test_images=np.asarray(preprocess.apply_preprocessing(prep, raw.test.images), np.float32),
      test_labels=raw.test.labels.astype(np.int32),
      num_classes=raw.num_classes,
      preprocessing=prep,
      fingerprint=raw.fingerprint,
      val_images=np.asarray(preprocess.apply_preprocessing(prep, val_images), np.float32),
      val_labels=raw.train.labels[val].astype(np.int32))
