"""Image folders and .tar.gz archives laid out as `<root?>/<split>/<class>/<image>`, decoded
once (Pillow) and cached as uint8 arrays in an .npz under the cache directory."""

from __future__ import annotations

import hashlib
import io
import logging
import os
import pathlib
import tarfile
import zlib
from typing import Callable, Iterator, NamedTuple

import numpy as np

from lottery_jax import atomic
from lottery_jax.data import raw
from lottery_jax.errors import UserInputError

_log = logging.getLogger(__name__)

ARCHIVE_SUFFIXES = (".tar.gz", ".tgz")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm",
                  ".pgm")
SPLITS = ("train", "test")
# 8-bit Pillow modes that decode to one grayscale channel (every other 8-bit mode is converted
# to RGB), 16-bit grayscale modes (scaled from 0..65535 to 0..255), and modes with no fixed
# range to map to 8 bits (refused: clipping them would silently saturate the images).
_GRAY_MODES = ("1", "L", "LA", "La")
_GRAY16_MODES = ("I;16", "I;16B", "I;16L", "I;16N")
_UNMAPPABLE_MODES = {"I": "32-bit integer", "F": "32-bit float"}
# Bump when the layout of the image-folder cache or the decoding changes (part of the key).
_CACHE_FORMAT = 2


class _Entry(NamedTuple):
  """An image file found in a folder or archive: its path parts and a way to read it."""
  parts: tuple[str, ...]
  read: Callable[[], bytes]


def is_archive(path: pathlib.Path) -> bool:
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


def _file_sha256(path: pathlib.Path) -> bytes:
  h = hashlib.sha256()
  try:
    with open(path, "rb") as f:
      for block in iter(lambda: f.read(1 << 20), b""):
        h.update(block)
  except OSError as e:
    raise UserInputError(f"cannot read {path}: {raw.one_line(e)}") from None
  return h.digest()


def _cache_key(path: pathlib.Path) -> str:
  """sha256[:16] of the cache format and the content: an archive's bytes, or a directory's
  sorted paths, each with the sha256 of its bytes (never sizes or mtimes: two swapped images
  of one size with their mtimes kept are another dataset)."""
  h = hashlib.sha256(f"format {_CACHE_FORMAT}\n".encode())
  if not path.is_dir():
    h.update(_file_sha256(path))
  else:
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
      h.update(f.relative_to(path).as_posix().encode() + b"\0" + _file_sha256(f))
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
    raise UserInputError(f"cannot read archive {path}: {raw.one_line(e)}") from None


def _directory_entries(path: pathlib.Path) -> Iterator[_Entry]:
  """Lists the image files under a directory; each is read when decoded. A folder that
  cannot be listed is a UserInputError (never silently skipped)."""

  def refuse(error: OSError):
    raise UserInputError(f"cannot read folder {error.filename} in data source {path}: "
                         f"{error.strerror or raw.one_line(error)}; fix its permissions") from None

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
      if im.mode in _UNMAPPABLE_MODES:
        raise UserInputError(
            f"image {'/'.join(entry.parts)!r} in {source} has Pillow mode {im.mode!r} "
            f"({_UNMAPPABLE_MODES[im.mode]} values with no fixed range to map to 8 bits); "
            "convert the images to 8- or 16-bit grayscale or 8-bit RGB")
      if im.mode in _GRAY16_MODES:  # 0..65535 onto 0..255, rounded.
        wide = np.asarray(im).astype(np.uint32)
        return ((wide * 255 + 32767) // 65535).astype(np.uint8)
      if im.mode != "L" and im.mode != "RGB":
        im = im.convert("L" if im.mode in _GRAY_MODES else "RGB")
      return np.asarray(im, dtype=np.uint8)
  except UserInputError:
    raise
  except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
    member = "/".join(entry.parts)
    reason = ("not an image in a format Pillow reads" if isinstance(e, UnidentifiedImageError)
              else e.strerror if isinstance(e, OSError) and e.strerror else raw.one_line(e))
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
  entries = _archive_entries(path) if is_archive(path) else _directory_entries(path)
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
  arrays["fingerprint"] = np.asarray(raw.fingerprint(
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
    _log.warning("ignoring unreadable cache %s (%s); rebuilding", cache_file, raw.one_line(e))
    return None
  if not ok:
    _log.warning("ignoring inconsistent cache %s; rebuilding", cache_file)
    return None
  return arrays


def load_image_folder(path: str | os.PathLike,
                      cache_dir: str | os.PathLike | None = None) -> raw.RawDataset:
  """Loads `<root?>/<split>/<class>/<image>` from a directory or a .tar.gz/.tgz archive.

  Labels index the class folders sorted by name. The decoded uint8 images are cached in
  `<cache_dir>/<key>.npz` (None or '': the default cache dir), so later loads skip decoding.
  """
  path = pathlib.Path(path).expanduser()
  if not path.exists():
    raise UserInputError(f"data source not found: {path}")
  if not (path.is_dir() or is_archive(path)):
    raise UserInputError(f"data source {path} must be a directory or a "
                         f"{'/'.join(ARCHIVE_SUFFIXES)} archive")
  cache_dir = pathlib.Path(cache_dir).expanduser() if cache_dir else raw.default_cache_dir()
  cache_file = cache_dir / f"{_cache_key(path)}.npz"
  arrays = _read_cache(cache_file)
  if arrays is None:
    arrays = _decode_folder(path)
    try:
      atomic.write_npz(cache_file, **arrays)
    except OSError as e:
      _log.warning("could not write cache %s: %s", cache_file, raw.one_line(e))
  return raw.raw_from_uint8(_stem(path), arrays["train_images"], arrays["train_labels"],
                         arrays["test_images"], arrays["test_labels"],
                         tuple(str(c) for c in arrays["class_names"]),
                         str(arrays["fingerprint"]))
