"""Raw image-classification datasets: scikit-learn digits, TFDS, and image folders, chosen by
`load_source` from the config's data.source.

Every loader returns a `RawDataset` whose images are float32 NHWC pixels in [0, 1]
(lottery_jax.data.raw); image folders live in lottery_jax.data.image_folder, TFDS in
lottery_jax.data.tfds_source.
"""

from __future__ import annotations

import os
import pathlib
import re

import numpy as np

from lottery_jax.data.image_folder import ARCHIVE_SUFFIXES
from lottery_jax.data.image_folder import load_image_folder
from lottery_jax.data.raw import RawDataset
from lottery_jax.data.raw import Split
from lottery_jax.data.raw import default_cache_dir
from lottery_jax.data.raw import fingerprint
from lottery_jax.data.tfds_source import KNOWN_TFDS_NAMES
from lottery_jax.data.tfds_source import load_tfds
from lottery_jax.errors import UserInputError

__all__ = ["KNOWN_TFDS_NAMES", "RawDataset", "Split", "default_cache_dir", "load_digits",
           "load_image_folder", "load_source", "load_tfds"]


def load_digits(seed: int = 0, test_fraction: float = 0.2) -> RawDataset:
  """scikit-learn's bundled 8x8 digits (1,797 images), split stratified by `seed`.

  Images are (N, 8, 8, 1) with the 0..16 intensities scaled to [0, 1].
  """
  if not 0.0 < test_fraction < 1.0:
    raise UserInputError(f"test_fraction must be in (0, 1), got {test_fraction!r}")
  from sklearn import datasets  # pylint: disable=g-import-not-at-top
  from sklearn import model_selection  # pylint: disable=g-import-not-at-top
  digits = datasets.load_digits()
  images_NHWC = (digits.images / 16.0).astype(np.float32)[..., None]
  labels_N = digits.target.astype(np.int32)
  train_x, test_x, train_y, test_y = model_selection.train_test_split(
      images_NHWC, labels_N, test_size=test_fraction, random_state=seed, stratify=labels_N)
  class_names = tuple(str(c) for c in range(10))
  return RawDataset(name="digits", train=Split(train_x, train_y), test=Split(test_x, test_y),
                    num_classes=10, class_names=class_names,
                    fingerprint=fingerprint(train_x, train_y, test_x, test_y))


# 'name', 'name/config', 'name:1.2.3' or 'name/config:1.2.3': what a TFDS name looks like.
_TFDS_NAME_RE = re.compile(r"^[a-z0-9_]+(/[A-Za-z0-9_.-]+)?(:[0-9.*]+)?$")


def _looks_like_path(source: str) -> bool:
  if source.lower().endswith(ARCHIVE_SUFFIXES) or source.startswith(("/", ".", "~")):
    return True
  return ("/" in source or os.sep in source) and not _TFDS_NAME_RE.match(source)


def load_source(source: str, *, data_dir: str | None = None, manual_dir: str | None = None,
                cache_dir: str | os.PathLike | None = None, seed: int = 0) -> RawDataset:
  """Loads 'digits', an image folder/.tar.gz path, or a TFDS dataset name.

  `seed` only affects 'digits' (its train/test split), `cache_dir` only image folders,
  `data_dir` and `manual_dir` only TFDS; None or '' means the default.
  """
  if source == "digits":
    return load_digits(seed=seed)
  path = pathlib.Path(source).expanduser()
  if source and path.exists():
    return load_image_folder(path, cache_dir)
  if not source or _looks_like_path(source):
    raise UserInputError(f"data source not found: {source}")
  return load_tfds(source, data_dir=data_dir or None, manual_dir=manual_dir or None)
