"""TensorFlow Datasets image-classification datasets as a `raw.RawDataset` (needs the
optional tensorflow-datasets and tensorflow)."""

from __future__ import annotations

import numpy as np

from lottery_jax.data import raw
from lottery_jax.errors import UserInputError

# A few TFDS image-classification datasets, named in error messages.
KNOWN_TFDS_NAMES = ("cifar10", "cifar100", "imagenette", "mnist", "fashion_mnist",
                    "svhn_cropped")
_TFDS_INSTALL_HINT = "install it with: pip install 'lottery_jax[tfds]'"


def load_tfds(name: str, data_dir: str | None = None,
              manual_dir: str | None = None) -> raw.RawDataset:
  """Loads the 'train' and 'test' splits of a TFDS image-classification dataset whole.

  Uses the 'validation' split when the dataset has no 'test' split. Needs tensorflow; TFDS
  may have to download the data, which fails without internet access.
  """
  try:
    import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise UserInputError(
        f"data source {name!r} needs tensorflow-datasets ({raw.one_line(e)}); "
        f"{_TFDS_INSTALL_HINT}") from None
  known = ", ".join(repr(n) for n in KNOWN_TFDS_NAMES)
  base_name = name.split("/")[0].split(":")[0]
  try:
    tfds.builder_cls(base_name)
  except tfds.core.registered.DatasetNotFoundError:
    raise UserInputError(
        f"unknown data source {name!r}: not 'digits', not an existing folder or .tar.gz, "
        f"and not a TFDS dataset; TFDS image-classification names include {known}") from None
  except Exception as e:  # pylint: disable=broad-except
    raise UserInputError(
        f"cannot load the TFDS builder for {name!r}: {raw.one_line(e)[:300]}") from None
  try:
    import tensorflow  # noqa: F401  pylint: disable=g-import-not-at-top,unused-import
  except ImportError as e:
    raise UserInputError(
        f"TFDS data source {name!r} needs tensorflow ({raw.one_line(e)}); "
        f"{_TFDS_INSTALL_HINT}") from None

  try:
    builder = tfds.builder(name, data_dir=data_dir)
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=manual_dir))
  except Exception as e:  # pylint: disable=broad-except
    raise UserInputError(
        f"TFDS could not download/prepare {name!r} ({raw.one_line(e)[:300]}); TFDS cannot "
        "download on this machine: use a local image folder or .tar.gz via data.source, or "
        "point data_dir/manual_dir at already prepared/downloaded files") from None

  info = builder.info
  splits = sorted(info.splits.keys())
  test_split = "validation" if "test" not in splits and "validation" in splits else "test"
  if splits and ("train" not in splits or test_split not in splits):
    raise UserInputError(f"TFDS dataset {name!r} needs a train and a test (or validation) "
                         f"split; it has {splits}")
  features = info.features
  if "image" not in features or "label" not in features:
    raise UserInputError(f"TFDS dataset {name!r} is not image classification (features "
                         f"{sorted(features.keys())}); valid examples: {known}")
  image_shape = tuple(features["image"].shape)
  if None in image_shape:
    raise UserInputError(
        f"TFDS dataset {name!r} has images of varying size {image_shape}; pick a fixed-size "
        "dataset or use a local image folder of same-size images via data.source")

  arrays = []
  for split in ("train", test_split):
    images, labels = tfds.as_numpy(
        builder.as_dataset(split=split, batch_size=-1, as_supervised=True))
    arrays += [np.asarray(images, dtype=np.uint8), np.asarray(labels, dtype=np.int32)]
  class_names = tuple(features["label"].names)
  return raw.raw_from_uint8(name, *arrays, class_names, raw.fingerprint(*arrays))
