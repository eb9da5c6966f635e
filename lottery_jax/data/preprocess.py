"""Input preprocessing fitted on the train split: none, per-channel standardization, or ZCA.

'zca' follows the MTT / distilled-pruning convention: ZCA whitening of [0, 1] pixels with no
mean/std normalisation, x -> (x - mean) @ U diag(1 / sqrt(S + eps)) U^T, where U, S come from
the SVD of the unbiased covariance of the flattened train images. Fitting is done in float64
numpy; the fitted parameters are float32 and apply to numpy or jax arrays.
"""

from __future__ import annotations

import logging
import os
import pathlib
import re
from typing import NamedTuple

import jax.numpy as jnp
import numpy as np

from lottery_jax.data.sources import default_cache_dir
from lottery_jax.data.sources import RawDataset
from lottery_jax import atomic
from lottery_jax.errors import unknown_choice
from lottery_jax.errors import UserInputError

_log = logging.getLogger(__name__)

PREPROCESSING_KINDS = ("none", "standardize", "zca")
# Rows per chunk are chosen so a float64 chunk takes about this many bytes.
_CHUNK_BYTES = 256 << 20


def _chunk_rows(row_bytes: int) -> int:
  return max(1, _CHUNK_BYTES // max(1, row_bytes))


# --- per-channel standardization -------------------------------------------------------------


class Standardize(NamedTuple):
  """Per-channel standardization x -> (x - mean_C) / std_C.

  Attributes:
    mean_C: float32 (C,) per-channel mean of the train images.
    std_C: float32 (C,) per-channel standard deviation (population, ddof=0).
  """
  mean_C: np.ndarray
  std_C: np.ndarray


def fit_standardize(images_NHWC: np.ndarray) -> Standardize:
  """Fits per-channel mean and std over all pixels of `images_NHWC`, in float64."""
  images_NHWC = np.asarray(images_NHWC)
  if images_NHWC.ndim != 4 or images_NHWC.shape[0] == 0:
    raise UserInputError(f"standardize needs non-empty NHWC images, got shape "
                         f"{images_NHWC.shape}")
  n, h, w, c = images_NHWC.shape
  rows = _chunk_rows(h * w * c * 8)
  total_C, total_sq_C = np.zeros(c), np.zeros(c)
  for start in range(0, n, rows):
    x_PC = images_NHWC[start:start + rows].reshape(-1, c).astype(np.float64)
    total_C += x_PC.sum(axis=0)
    total_sq_C += np.einsum("pc,pc->c", x_PC, x_PC)
  count = n * h * w
  mean_C = total_C / count
  var_C = np.maximum(total_sq_C / count - np.square(mean_C), 0.0)
  std_C = np.sqrt(var_C)
  std_C[std_C == 0] = 1.0  # A constant channel is only centred.
  return Standardize(mean_C.astype(np.float32), std_C.astype(np.float32))


def apply_standardize(s: Standardize, images_NHWC):
  """(images - mean) / std per channel; numpy in gives numpy out, jax in gives jax out."""
  return (images_NHWC - s.mean_C) / s.std_C


# --- ZCA whitening ---------------------------------------------------------------------------


class Zca(NamedTuple):
  """ZCA whitening x_D -> (x_D - mean_D) @ whiten_DxD of images flattened to D = H*W*C.

  Attributes:
    mean_D: float32 (D,) mean of the flattened train images.
    whiten_DxD: float32 (D, D) symmetric U diag(1 / sqrt(S + eps)) U^T.
  """
  mean_D: np.ndarray
  whiten_DxD: np.ndarray


def fit_zca(images_NHWC: np.ndarray, eps: float) -> Zca:
  """Fits ZCA on the flattened images as given (no normalisation), in float64.

  The unbiased covariance is accumulated in chunks of about 256 MB, so 50,000 CIFAR images
  need well under 2 GB beyond the input.
  """
  if not eps > 0:
    raise UserInputError(f"zca_eps must be > 0, got {eps!r}")
  images_NHWC = np.asarray(images_NHWC)
  n = images_NHWC.shape[0]
  if images_NHWC.ndim != 4 or n < 2:
    raise UserInputError(f"ZCA needs at least 2 NHWC images, got shape {images_NHWC.shape}")
  x_ND = images_NHWC.reshape(n, -1)
  d = x_ND.shape[1]
  rows = _chunk_rows(d * 8)
  sum_D = np.zeros(d)
  for start in range(0, n, rows):
    sum_D += x_ND[start:start + rows].sum(axis=0, dtype=np.float64)
  mean_D = sum_D / n
  scatter_DxD = np.zeros((d, d))
  for start in range(0, n, rows):
    centred = x_ND[start:start + rows].astype(np.float64)
    centred -= mean_D
    scatter_DxD += centred.T @ centred  # A.T @ A: numpy uses the symmetric BLAS kernel.
  cov_DxD = scatter_DxD / (n - 1)
  # The covariance is symmetric PSD, so its eigendecomposition is its SVD.
  s_D, u_DxD = np.linalg.eigh(cov_DxD)
  s_D = np.maximum(s_D, 0.0)  # Round-off can make tiny eigenvalues slightly negative.
  whiten_DxD = (u_DxD / np.sqrt(s_D + eps)) @ u_DxD.T
  whiten_DxD = (whiten_DxD + whiten_DxD.T) / 2
  return Zca(mean_D.astype(np.float32), whiten_DxD.astype(np.float32))


def apply_zca(z: Zca, images_NHWC):
  """Whitens images; numpy in gives float32 numpy out (chunked), jax in gives jax out."""
  shape = images_NHWC.shape
  d = z.mean_D.shape[0]
  if int(np.prod(shape[1:])) != d:
    raise UserInputError(f"ZCA was fitted on images of {d} values, got images of shape "
                         f"{tuple(shape)}")
  if not isinstance(images_NHWC, np.ndarray):
    x_ND = jnp.reshape(images_NHWC, (shape[0], d)) - z.mean_D
    return jnp.matmul(x_ND, z.whiten_DxD, precision="highest").reshape(shape)
  x_ND = images_NHWC.reshape(shape[0], d)
  out_ND = np.empty((shape[0], d), dtype=np.float32)
  rows = _chunk_rows(d * 4)
  for start in range(0, shape[0], rows):
    chunk = x_ND[start:start + rows].astype(np.float32) - z.mean_D
    out_ND[start:start + rows] = chunk @ z.whiten_DxD
  return out_ND.reshape(shape)


def _zca_cache_file(cache_dir: pathlib.Path, key: str, eps: float) -> pathlib.Path:
  safe_key = re.sub(r"[^A-Za-z0-9_.-]", "_", key)
  return cache_dir / f"zca-{safe_key}-eps{float(eps)!r}.npz"


def fit_zca_cached(images_NHWC: np.ndarray, eps: float,
                   cache_dir: str | os.PathLike | None, key: str) -> Zca:
  """`fit_zca`, cached in `<cache_dir>/zca-<key>-eps<eps>.npz` (None or '': the default).

  `key` must identify the images (e.g. `RawDataset.fingerprint`). A corrupt or mismatched
  cache file is refitted and overwritten.
  """
  if not eps > 0:
    raise UserInputError(f"zca_eps must be > 0, got {eps!r}")
  cache_file = _zca_cache_file(
      pathlib.Path(cache_dir).expanduser() if cache_dir else default_cache_dir(), key, eps)
  d = int(np.prod(np.shape(images_NHWC)[1:]))
  if cache_file.is_file():
    try:
      with np.load(cache_file, allow_pickle=False) as npz:
        z = Zca(npz["mean_D"], npz["whiten_DxD"])
      if z.mean_D.shape == (d,) and z.whiten_DxD.shape == (d, d):
        return z
      _log.warning("ignoring ZCA cache %s with the wrong shape; refitting", cache_file)
    except Exception as e:  # pylint: disable=broad-except
      _log.warning("ignoring unreadable ZCA cache %s (%s); refitting", cache_file, e)
  z = fit_zca(images_NHWC, eps)
  try:
    atomic.write_npz(cache_file, mean_D=z.mean_D, whiten_DxD=z.whiten_DxD)
  except OSError as e:
    _log.warning("could not write ZCA cache %s: %s", cache_file, e)
  return z


# --- choice of preprocessing -----------------------------------------------------------------


class Preprocessing(NamedTuple):
  """The preprocessing applied to every image (train, test, distilled).

  Attributes:
    kind: one of PREPROCESSING_KINDS.
    standardize: fitted parameters when kind == 'standardize', else None.
    zca: fitted parameters when kind == 'zca', else None.
    zca_eps: the eps ZCA was fitted with when kind == 'zca', else None.
  """
  kind: str
  standardize: Standardize | None = None
  zca: Zca | None = None
  zca_eps: float | None = None


def fit_preprocessing(raw: RawDataset, kind: str, zca_eps: float = 0.1,
                      cache_dir: str | os.PathLike | None = None) -> Preprocessing:
  """Fits `kind` preprocessing on `raw.train.images` (ZCA cached by `raw.fingerprint`)."""
  if kind == "none":
    return Preprocessing("none")
  if kind == "standardize":
    return Preprocessing("standardize", standardize=fit_standardize(raw.train.images))
  if kind == "zca":
    z = fit_zca_cached(raw.train.images, zca_eps, cache_dir, key=raw.fingerprint)
    return Preprocessing("zca", zca=z, zca_eps=float(zca_eps))
  raise unknown_choice("preprocessing", kind, PREPROCESSING_KINDS)


def apply_preprocessing(p: Preprocessing, images_NHWC):
  """Applies `p` to [0, 1] images (numpy or jax), returning the same kind of array."""
  if p.kind == "none":
    return images_NHWC
  if p.kind == "standardize":
    return apply_standardize(p.standardize, images_NHWC)
  if p.kind == "zca":
    return apply_zca(p.zca, images_NHWC)
  raise unknown_choice("preprocessing", p.kind, PREPROCESSING_KINDS)


def describe(p: Preprocessing) -> dict:
  """A JSON-able summary: kind, eps (ZCA only, else None), mean/std lists (standardize)."""
  out = {"kind": p.kind, "eps": p.zca_eps}
  if p.standardize is not None:
    out["mean"] = [float(v) for v in p.standardize.mean_C]
    out["std"] = [float(v) for v in p.standardize.std_C]
  return out
