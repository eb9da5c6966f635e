"""Raw image-classification datasets: scikit-learn digits, TFDS, and image folders.

Every loader returns a `RawDataset` whose images are float32 NHWC pixels in [0, 1]. Image
folders (a directory or a .tar.gz laid out as `<root?>/<split>/<class>/<image>`) are decoded
once and cached as uint8 arrays in an .npz under the cache directory.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import pathlib
import re
import tarfile
import zlib
from typing import Callable, Iterator, NamedTuple

import numpy as np

from lottery_jax import atomic
from lottery_jax.errors import UserInputError

_log = logging.getLogger(__name__)

ARCHIVE_SUFFIXES = (".tar.gz", ".tgz")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm",
                  ".pgm")
SPLITS = ("train", "test")
# A few TFDS image-classification datasets, named in error messages.
KNOWN_TFDS_NAMES = ("cifar10", "cifar100", "imagenette", "mnist", "fashion_mnist",
                    "svhn_cropped")
_TFDS_INSTALL_HINT = "install it with: pip install 'lottery_jax[tfds]'"
# Pillow modes that decode to one grayscale channel; every other mode is converted to RGB.
_GRAY_MODES = ("1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F")
# Bump when the layout of the image-folder cache changes.
_CACHE_FORMAT = 1


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


def _fingerprint(*arrays: np.ndarray) -> str:
  """Short sha256 of the arrays' dtypes, shapes and bytes."""
  h = hashlib.sha256()
  for a in arrays:
    a = np.ascontiguousarray(a)
    h.update(f"{a.dtype.str}{a.shape};".encode())
    h.update(memoryview(a).cast("B"))
  return h.hexdigest()[:16]


def _one_line(e: BaseException) -> str:
  """The exception's message on one line (or its type name when empty)."""
  text = " ".join(str(e).split())
  return text or type(e).__name__


def _raw_from_uint8(name, train_images, train_labels, test_images, test_labels, class_names,
                    fingerprint) -> RawDataset:
  """Builds a RawDataset from uint8 NHWC images, scaling pixels to [0, 1]."""

  def split(images, labels):
    return Split(images.astype(np.float32) / np.float32(255.0), labels.astype(np.int32))

  return RawDataset(name=name, train=split(train_images, train_labels),
                    test=split(test_images, test_labels), num_classes=len(class_names),
                    class_names=tuple(class_names), fingerprint=fingerprint)


# --- scikit-learn digits ---------------------------------------------------------------------


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
                    fingerprint=_fingerprint(train_x, train_y, test_x, test_y))


# --- TensorFlow Datasets ---------------------------------------------------------------------


def load_tfds(name: str, data_dir: str | None = None,
              manual_dir: str | None = None) -> RawDataset:
  """Loads the 'train' and 'test' splits of a TFDS image-classification dataset whole.

  Uses the 'validation' split when the dataset has no 'test' split. Needs tensorflow; TFDS
  may have to download the data, which fails without internet access.
  """
  try:
    import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise UserInputError(
        f"data source {name!r} needs tensorflow-datasets ({_one_line(e)}); "
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
        f"cannot load the TFDS builder for {name!r}: {_one_line(e)[:300]}") from None
  try:
    import tensorflow  # noqa: F401  pylint: disable=g-import-not-at-top,unused-import
  except ImportError as e:
    raise UserInputError(
        f"TFDS data source {name!r} needs tensorflow ({_one_line(e)}); "
        f"{_TFDS_INSTALL_HINT}") from None

  try:
    builder = tfds.builder(name, data_dir=data_dir)
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=manual_dir))
  except Exception as e:  # pylint: disable=broad-except
    raise UserInputError(
        f"TFDS could not download/prepare {name!r} ({_one_line(e)[:300]}); TFDS cannot "
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
  return _raw_from_uint8(name, *arrays, class_names, _fingerprint(*arrays))


# --- image folders and .tar.gz archives ------------------------------------------------------


class _Entry(NamedTuple):
  """An image file found in a folder or archive: its path parts and a way to read it."""
  parts: tuple[str, ...]
  read: Callable[[], bytes]


def _is_archive(path: pathlib.Path) -> bool:
  return path.name.lower().endswith(ARCHIVE_SUFFIXES)


def _stem(path: pathlib.Path) -> str:
  """'cifar10-jpeg.tar.gz' -> 'cifar10-jpeg'; a directory keeps its name."""
  name = path.name
  for suffix in ARCHIVE_SUFFIXES:
    if name.lower().endswith(suffix):
      return name[:-len(suffix)]
  return name


def _is_image_name(parts: tuple[str, ...]) -> bool:
  """Whether a file is a candidate image: image suffix, no hidden path component."""
  if any(p.startswith(".") or p == "__MACOSX" for p in parts):
    return False
  return parts[-1].lower().endswith(IMAGE_SUFFIXES)


def _cache_key(path: pathlib.Path) -> str:
  """sha256[:16] of an archive's bytes, or of a directory's sorted paths, sizes and mtimes."""
  h = hashlib.sha256()
  if path.is_dir():
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
      st = f.stat()
      h.update(f"{f.relative_to(path).as_posix()}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
  else:
    try:
      with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
          h.update(block)
    except OSError as e:
      raise UserInputError(f"cannot read {path}: {_one_line(e)}") from None
  return h.hexdigest()[:16]


def _archive_entries(path: pathlib.Path) -> Iterator[_Entry]:
  """Streams the image files of a .tar.gz archive, reading each member's bytes once."""
  try:
    with tarfile.open(path, "r:gz") as tar:
      for member in tar:
        if not member.isfile():
          continue
        parts = tuple(p for p in member.name.split("/") if p not in ("", "."))
        if not _is_image_name(parts):
          continue
        data = tar.extractfile(member).read()
        yield _Entry(parts, lambda data=data: data)
  except (tarfile.TarError, EOFError, zlib.error, OSError) as e:
    raise UserInputError(f"cannot read archive {path}: {_one_line(e)}") from None


def _directory_entries(path: pathlib.Path) -> Iterator[_Entry]:
  """Lists the image files under a directory; each is read when decoded. A folder that
  cannot be listed is a UserInputError (never silently skipped)."""

  def refuse(error: OSError):
    raise UserInputError(f"cannot read folder {error.filename} in data source {path}: "
                         f"{error.strerror or _one_line(error)}; fix its permissions") from None

  found = []
  for folder, dirs, files in os.walk(path, onerror=refuse):
    dirs.sort()
    for name in files:
      f = pathlib.Path(folder) / name
      parts = f.relative_to(path).parts
      if _is_image_name(parts) and f.is_file():
        found.append(_Entry(parts, f.read_bytes))
  yield from sorted(found, key=lambda e: e.parts)


def _group_by_split_and_class(
    entries: list[_Entry], source: pathlib.Path) -> dict[str, dict[str, list[_Entry]]]:
  """{split: {class: entries sorted by file name}}, dropping an optional single root folder."""
  if not entries:
    raise UserInputError(f"no image files found in {source}; expected "
                         "<root?>/<split>/<class>/<image> with splits train and test")
  roots = {e.parts[0] for e in entries}
  prefix = ""
  if len(roots) == 1 and any(len(e.parts) == 4 for e in entries):
    prefix = entries[0].parts[0] + "/"
    entries = [e._replace(parts=e.parts[1:]) for e in entries]
  groups: dict[str, dict[str, list[_Entry]]] = {}
  for e in entries:
    if len(e.parts) != 3:
      member = prefix + "/".join(e.parts)
      raise UserInputError(
          f"unexpected file {member!r} in {source}; expected the layout "
          "<root?>/<split>/<class>/<image> with splits train and test")
    split, cls, _ = e.parts
    groups.setdefault(split, {}).setdefault(cls, []).append(e)
  missing = [s for s in SPLITS if s not in groups]
  if missing:
    raise UserInputError(f"image folder {source} has no {' or '.join(missing)} split; "
                         f"found splits {sorted(groups)}, need {list(SPLITS)}")
  train_classes, test_classes = set(groups["train"]), set(groups["test"])
  if train_classes != test_classes:
    raise UserInputError(
        f"image folder {source}: train and test class folders differ (only in train: "
        f"{sorted(train_classes - test_classes)}, only in test: "
        f"{sorted(test_classes - train_classes)})")
  if len(train_classes) < 2:
    raise UserInputError(f"image folder {source} has {len(train_classes)} class folder(s) "
                         f"{sorted(train_classes)}; classification needs at least 2")
  for classes in groups.values():
    for cls in classes:
      classes[cls].sort(key=lambda e: e.parts[-1])
  return groups


def _decode(entry: _Entry, source: pathlib.Path) -> np.ndarray:
  """Decodes one image to uint8 (H, W) for grayscale or (H, W, 3) for anything else."""
  # Only image folders need Pillow; keeps `import lottery_jax.train` light.
  from PIL import Image, UnidentifiedImageError
  try:
    with Image.open(io.BytesIO(entry.read())) as im:
      im.load()
      if im.mode != "L" and im.mode != "RGB":
        im = im.convert("L" if im.mode in _GRAY_MODES else "RGB")
      return np.asarray(im, dtype=np.uint8)
  except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
    member = "/".join(entry.parts)
    reason = ("not an image in a format Pillow reads" if isinstance(e, UnidentifiedImageError)
              else e.strerror if isinstance(e, OSError) and e.strerror else _one_line(e))
    raise UserInputError(
        f"cannot decode image {member!r} in {source}: {reason}; remove or replace it") from None


def _decode_split(classes: dict[str, list[_Entry]], class_names: list[str],
                  source: pathlib.Path) -> tuple[list[np.ndarray], np.ndarray, list[str]]:
  """Decodes a split's images in class then file-name order.

  Returns:
    The decoded images, int32 labels (N,), and each image's path (for error messages).
  """
  images, labels, names = [], [], []
  for label, cls in enumerate(class_names):
    for entry in classes[cls]:
      images.append(_decode(entry, source))
      labels.append(label)
      names.append("/".join(entry.parts))
  return images, np.asarray(labels, dtype=np.int32), names


def _stack_uint8(images: list[np.ndarray], names: list[str], ref_name: str,
                 ref_hw: tuple[int, int], to_rgb: bool, source: pathlib.Path) -> np.ndarray:
  """Stacks decoded images into uint8 (N, H, W, C), C = 3 if `to_rgb` else 1.

  Every image must be `ref_hw` = (H, W), the size of the image named `ref_name`.
  """
  for im, name in zip(images, names):
    if im.shape[:2] != ref_hw:
      raise UserInputError(
          f"image {name!r} in {source} is {im.shape[1]}x{im.shape[0]} (WxH) but "
          f"{ref_name!r} is {ref_hw[1]}x{ref_hw[0]}; all images must have the same size")
  out = np.empty((len(images), *ref_hw, 3 if to_rgb else 1), dtype=np.uint8)
  for i, im in enumerate(images):
    out[i] = im[..., None] if im.ndim == 2 else im
  return out


def _decode_folder(path: pathlib.Path) -> dict[str, np.ndarray]:
  """Decodes an image folder or archive into the arrays stored in the cache."""
  entries = _archive_entries(path) if _is_archive(path) else _directory_entries(path)
  groups = _group_by_split_and_class(list(entries), path)
  class_names = sorted(groups["train"])
  decoded = {s: _decode_split(groups[s], class_names, path) for s in SPLITS}
  to_rgb = any(im.ndim == 3 for s in SPLITS for im in decoded[s][0])
  ref_image, ref_name = decoded["train"][0][0], decoded["train"][2][0]
  arrays = {}
  for s in SPLITS:
    images, labels, names = decoded[s]
    arrays[f"{s}_images"] = _stack_uint8(images, names, ref_name, ref_image.shape[:2],
                                         to_rgb, path)
    arrays[f"{s}_labels"] = labels
  arrays["class_names"] = np.asarray(class_names, dtype=np.str_)
  arrays["fingerprint"] = np.asarray(_fingerprint(
      arrays["train_images"], arrays["train_labels"], arrays["test_images"],
      arrays["test_labels"]))
  arrays["format"] = np.asarray(_CACHE_FORMAT)
  return arrays


def _read_cache(cache_file: pathlib.Path) -> dict[str, np.ndarray] | None:
  """The cached arrays, or None when the cache file is missing, corrupt or outdated."""
  if not cache_file.is_file():
    return None
  try:
    with np.load(cache_file, allow_pickle=False) as npz:
      arrays = {k: npz[k] for k in npz.files}
    ok = (int(arrays["format"]) == _CACHE_FORMAT
          and arrays["train_images"].dtype == np.uint8
          and arrays["train_images"].ndim == 4
          and arrays["train_images"].shape[1:] == arrays["test_images"].shape[1:]
          and len(arrays["train_images"]) == len(arrays["train_labels"])
          and len(arrays["test_images"]) == len(arrays["test_labels"]))
  except Exception as e:  # pylint: disable=broad-except
    _log.warning("ignoring unreadable cache %s (%s); rebuilding", cache_file, _one_line(e))
    return None
  if not ok:
    _log.warning("ignoring inconsistent cache %s; rebuilding", cache_file)
    return None
  return arrays


def load_image_folder(path: str | os.PathLike,
                      cache_dir: str | os.PathLike | None = None) -> RawDataset:
  """Loads `<root?>/<split>/<class>/<image>` from a directory or a .tar.gz/.tgz archive.

  Labels index the class folders sorted by name. The decoded uint8 images are cached in
  `<cache_dir>/<key>.npz` (None or '': the default cache dir), so later loads skip decoding.
  """
  path = pathlib.Path(path).expanduser()
  if not path.exists():
    raise UserInputError(f"data source not found: {path}")
  if not (path.is_dir() or _is_archive(path)):
    raise UserInputError(f"data source {path} must be a directory or a "
                         f"{'/'.join(ARCHIVE_SUFFIXES)} archive")
  cache_dir = pathlib.Path(cache_dir).expanduser() if cache_dir else default_cache_dir()
  cache_file = cache_dir / f"{_cache_key(path)}.npz"
  arrays = _read_cache(cache_file)
  if arrays is None:
    arrays = _decode_folder(path)
    try:
      atomic.write_npz(cache_file, **arrays)
    except OSError as e:
      _log.warning("could not write cache %s: %s", cache_file, _one_line(e))
  return _raw_from_uint8(_stem(path), arrays["train_images"], arrays["train_labels"],
                         arrays["test_images"], arrays["test_labels"],
                         tuple(str(c) for c in arrays["class_names"]),
                         str(arrays["fingerprint"]))


# --- dispatch ---------------------------------------------------------------------------------

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
