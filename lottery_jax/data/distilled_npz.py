"""Distilled datasets stored as .npz: `images` (NCHW or NHWC), `labels`, `metadata` (JSON).

The published files (e.g. cifar10_ipc10_mtt.npz) hold float32 NCHW images already in the
preprocessed space their metadata declares (for MTT: ZCA, eps 0.1, on [0, 1] pixels), int64
labels and a JSON string describing the method and the preprocessing.
"""

from __future__ import annotations

import json
import os
import pathlib
from typing import Any, NamedTuple

import numpy as np

from lottery_jax import atomic
from lottery_jax.errors import UserInputError

_KEYS = ("images", "labels", "metadata")


class DistilledSet(NamedTuple):
  """A distilled (synthetic) training set.

  Attributes:
    images: float32 (N, H, W, C), in the preprocessed space `metadata` declares.
    labels: int32 (N,) class indices.
    metadata: the decoded JSON metadata (method, preprocessing, ...).
  """
  images: np.ndarray
  labels: np.ndarray
  metadata: dict[str, Any]


def _decode_metadata(value: np.ndarray, path) -> dict[str, Any]:
  """Parses the 0-d string array `value` as a JSON object."""
  text = value.item() if value.ndim == 0 else None
  if isinstance(text, bytes):
    text = text.decode("utf-8", errors="replace")
  if not isinstance(text, str):
    raise UserInputError(f"distilled file {path}: metadata must be a JSON string, got an "
                         f"array of dtype {value.dtype} and shape {value.shape}")
  try:
    metadata = json.loads(text)
  except json.JSONDecodeError as e:
    raise UserInputError(f"distilled file {path}: metadata is not valid JSON ({e})") from None
  if not isinstance(metadata, dict):
    raise UserInputError(f"distilled file {path}: metadata must be a JSON object, got "
                         f"{type(metadata).__name__}")
  return metadata


def _to_NHWC(images: np.ndarray, image_shape_HWC: tuple[int, int, int], layout_hint: str,
             path) -> np.ndarray:
  """Returns images as NHWC, transposing from NCHW when that is what matches."""
  h, w, c = image_shape_HWC
  nhwc_ok = images.ndim == 4 and images.shape[1:] == (h, w, c)
  nchw_ok = images.ndim == 4 and images.shape[1:] == (c, h, w)
  if nhwc_ok and nchw_ok:  # Only when H == W == C; trust the metadata's layout if it says.
    nhwc_ok = not layout_hint.upper().startswith("NCHW")
  if nhwc_ok:
    return images
  if nchw_ok:
    return images.transpose(0, 2, 3, 1)
  raise UserInputError(
      f"distilled file {path}: expected images of shape (N, {h}, {w}, {c}) NHWC or "
      f"(N, {c}, {h}, {w}) NCHW, got shape {images.shape}")


def _read_arrays(path: pathlib.Path, keys) -> dict[str, np.ndarray]:
  """`keys` of the .npz at `path`; UserInputError if it is missing, unreadable or lacks one."""
  if path.is_dir():
    raise UserInputError(f"distilled set {path} is a directory; name the .npz file itself "
                         "(or 'dm', 'idc', 'random_subset')")
  if not path.is_file():
    raise UserInputError(f"distilled file not found: {path}")
  try:
    with open(path, "rb") as f:
      magic = f.read(4)
  except OSError as e:
    raise UserInputError(f"cannot read distilled file {path}: {e.strerror or e}") from None
  if magic != b"PK\x03\x04":
    raise UserInputError(f"distilled file {path} is not an .npz archive (a zip of .npy arrays "
                         f"{list(_KEYS)}); write one with lottery_jax.data.save_distilled")
  try:
    loaded = np.load(path, allow_pickle=False)
    if not isinstance(loaded, np.lib.npyio.NpzFile):
      raise ValueError("it holds a single .npy array, not an .npz archive")
    with loaded as npz:
      missing = [k for k in _KEYS if k not in npz.files]
      if missing:
        raise UserInputError(f"distilled file {path} lacks {missing}; it has {npz.files}, "
                             f"needs {list(_KEYS)}")
      return {k: npz[k] for k in keys}
  except UserInputError:
    raise
  except Exception as e:  # pylint: disable=broad-except
    text = " ".join(str(e).split()) or type(e).__name__
    raise UserInputError(f"cannot read distilled file {path} as .npz: {text}") from None


def read_metadata(path: str | os.PathLike) -> dict[str, Any]:
  """The decoded JSON metadata of a distilled .npz (e.g. to learn its preprocessing first)."""
  path = pathlib.Path(path).expanduser()
  return _decode_metadata(_read_arrays(path, ("metadata",))["metadata"], path)


def load_distilled(path: str | os.PathLike, *, image_shape_HWC: tuple[int, int, int],
                   num_classes: int) -> DistilledSet:
  """Loads and checks a distilled .npz against the real dataset's image shape and classes."""
  path = pathlib.Path(path).expanduser()
  arrays = _read_arrays(path, _KEYS)

  metadata = _decode_metadata(arrays["metadata"], path)
  images = arrays["images"]
  if images.dtype.kind not in "fiu":
    raise UserInputError(f"distilled file {path}: images must be numeric, got dtype "
                         f"{images.dtype}")
  layout_hint = str(metadata.get("layout", ""))
  images_NHWC = np.ascontiguousarray(
      _to_NHWC(images, tuple(image_shape_HWC), layout_hint, path), dtype=np.float32)
  if not np.all(np.isfinite(images_NHWC)):
    raise UserInputError(f"distilled file {path}: images contain NaN or infinite values")

  labels = arrays["labels"]
  if labels.ndim != 1 or labels.shape[0] != images_NHWC.shape[0]:
    raise UserInputError(f"distilled file {path}: labels must have shape "
                         f"({images_NHWC.shape[0]},) to match the images, got {labels.shape}")
  if labels.dtype.kind not in "iu":
    raise UserInputError(f"distilled file {path}: labels must be integers, got dtype "
                         f"{labels.dtype}")
  if labels.shape[0] == 0:
    raise UserInputError(f"distilled file {path} holds no images")
  bad = (labels < 0) | (labels >= num_classes)
  if bad.any():
    raise UserInputError(f"distilled file {path}: label {int(labels[bad][0])} is outside the "
                         f"valid range [0, {num_classes})")
  missing = np.setdiff1d(np.arange(num_classes), labels)
  if missing.size:
    raise UserInputError(f"distilled file {path} has no images of class(es) "
                         f"{missing.tolist()} of the real data's {num_classes}; a distilled "
                         "set must cover every class")
  return DistilledSet(images_NHWC, labels.astype(np.int32), metadata)


def preprocessing_kind(metadata: dict[str, Any]) -> tuple[str, float | None]:
  """The preprocessing a distilled set's images live in: ('zca', eps), ('standardize', None)
  or ('none', None)."""
  prep = metadata.get("preprocessing") or {}
  if not isinstance(prep, dict):
    raise UserInputError(f"distilled metadata 'preprocessing' must be an object, got {prep!r}")
  zca = prep.get("zca")
  if zca:
    eps = zca.get("eps") if isinstance(zca, dict) else None
    if not isinstance(eps, (int, float)) or isinstance(eps, bool) or not eps > 0:
      raise UserInputError(f"distilled metadata preprocessing.zca needs a positive 'eps', "
                           f"got {zca!r}")
    return "zca", float(eps)
  if prep.get("mean_std_normalization"):
    return "standardize", None
  return "none", None


def check_preprocessing(metadata: dict[str, Any], prep, path) -> None:
  """UserInputError unless the set's declared preprocessing is `prep` (a fitted
  data.preprocess.Preprocessing of the real data): same kind, same ZCA eps, and, where the
  metadata records them, the same normalisation mean and std (within 1e-3)."""
  kind, eps = preprocessing_kind(metadata)
  if kind != prep.kind or (kind == "zca" and abs(eps - prep.zca_eps) > 1e-9):
    have = kind if eps is None else f"{kind} (eps {eps})"
    real = prep.kind if prep.zca_eps is None else f"{prep.kind} (eps {prep.zca_eps})"
    raise UserInputError(f"distilled file {path} holds images in {have} space but the real "
                         f"data is preprocessed with {real}; set data.preprocess (and "
                         f"data.zca_eps) to match")
  declared = metadata.get("preprocessing") or {}
  if prep.standardize is not None and "mean" in declared and "std" in declared:
    for name, ours in (("mean", prep.standardize.mean_C), ("std", prep.standardize.std_C)):
      theirs = np.asarray(declared[name], np.float64)
      if theirs.shape != np.shape(ours) or np.max(np.abs(theirs - ours)) > 1e-3:
        raise UserInputError(f"distilled file {path} was normalised with {name} "
                             f"{np.round(theirs, 4).tolist()}, the real data's {name} is "
                             f"{np.round(np.asarray(ours), 4).tolist()}: not the same dataset")


def save_distilled(path: str | os.PathLike, images_NHWC: np.ndarray, labels: np.ndarray,
                   metadata: dict[str, Any]) -> None:
  """Writes the published layout atomically: float32 NCHW images, int64 labels, JSON string."""
  images_NHWC = np.asarray(images_NHWC, dtype=np.float32)
  if images_NHWC.ndim != 4:
    raise UserInputError(f"distilled images must be NHWC, got shape {images_NHWC.shape}")
  atomic.write_npz(
      pathlib.Path(path).expanduser(),
      images=np.ascontiguousarray(images_NHWC.transpose(0, 3, 1, 2)),
      labels=np.asarray(labels, dtype=np.int64),
      metadata=np.asarray(json.dumps(metadata)))
