"""Tests for lottery_jax.data.preprocess: standardization, ZCA, its cache, the dispatch."""

import jax.numpy as jnp
import numpy as np
import pytest

from lottery_jax.data import preprocess
from lottery_jax.data import sources
from lottery_jax.errors import UserInputError


def _correlated_images(n=500, hwc=(2, 2, 3), seed=0) -> np.ndarray:
  """float32 (n, H, W, C) in [0, 1] with strongly correlated pixels (D = H*W*C)."""
  rng = np.random.default_rng(seed)
  d = int(np.prod(hwc))
  mixing_DxD = rng.normal(size=(d, d))
  x_ND = rng.normal(size=(n, d)) @ mixing_DxD
  x_ND = (x_ND - x_ND.min()) / (x_ND.max() - x_ND.min())
  return x_ND.reshape(n, *hwc).astype(np.float32)


def _raw(images_NHWC) -> sources.RawDataset:
  split = sources.Split(images_NHWC, np.zeros(len(images_NHWC), np.int32))
  return sources.RawDataset("toy", split, split, 1, ("a",), fingerprint="0123abcd")


def test_standardize_zero_mean_unit_std():
  rng = np.random.default_rng(0)
  images = (rng.uniform(size=(200, 4, 4, 3)) * [0.2, 0.5, 1.0] + [0.1, 0.3, 0.0])
  images = images.astype(np.float32)
  s = preprocess.fit_standardize(images)
  assert s.mean_C.dtype == np.float32 and s.mean_C.shape == (3,)
  out = preprocess.apply_standardize(s, images)
  assert isinstance(out, np.ndarray) and out.dtype == np.float32
  np.testing.assert_allclose(out.mean(axis=(0, 1, 2)), 0.0, atol=1e-5)
  np.testing.assert_allclose(out.std(axis=(0, 1, 2)), 1.0, atol=1e-5)
  np.testing.assert_allclose(s.mean_C, images.astype(np.float64).mean(axis=(0, 1, 2)),
                             rtol=1e-6)
  out_jax = preprocess.apply_standardize(s, jnp.asarray(images))
  assert isinstance(out_jax, jnp.ndarray)
  np.testing.assert_allclose(np.asarray(out_jax), out, atol=1e-6)


def test_standardize_constant_channel_is_only_centred():
  images = np.full((3, 2, 2, 1), 0.5, np.float32)
  out = preprocess.apply_standardize(preprocess.fit_standardize(images), images)
  np.testing.assert_array_equal(out, 0.0)


def test_zca_whitens_to_identity_covariance():
  images = _correlated_images()
  z = preprocess.fit_zca(images, eps=1e-10)
  assert z.mean_D.shape == (12,) and z.whiten_DxD.shape == (12, 12)
  out = preprocess.apply_zca(z, images)
  assert out.shape == images.shape and out.dtype == np.float32
  out_ND = out.reshape(len(out), -1).astype(np.float64)
  np.testing.assert_allclose(out_ND.mean(axis=0), 0.0, atol=1e-4)
  np.testing.assert_allclose(np.cov(out_ND, rowvar=False), np.eye(12), atol=2e-3)


def test_zca_matches_reference_formula():
  images = _correlated_images(seed=1)
  eps = 0.1
  x_ND = images.reshape(len(images), -1).astype(np.float64)
  mean_D = x_ND.mean(axis=0)
  cov_DxD = (x_ND - mean_D).T @ (x_ND - mean_D) / (len(x_ND) - 1)
  u, s, _ = np.linalg.svd(cov_DxD)
  expected_ND = (x_ND - mean_D) @ u @ np.diag(1.0 / np.sqrt(s + eps)) @ u.T

  z = preprocess.fit_zca(images, eps)
  np.testing.assert_allclose(z.whiten_DxD, u @ np.diag(1.0 / np.sqrt(s + eps)) @ u.T,
                             rtol=1e-5, atol=1e-5)
  out = preprocess.apply_zca(z, images)
  np.testing.assert_allclose(out.reshape(len(out), -1), expected_ND, rtol=1e-4, atol=1e-4)
  out_jax = preprocess.apply_zca(z, jnp.asarray(images))
  assert isinstance(out_jax, jnp.ndarray) and out_jax.shape == images.shape
  np.testing.assert_allclose(np.asarray(out_jax), out, atol=1e-5)


def test_zca_chunking_matches_one_shot(monkeypatch):
  images = _correlated_images(n=300, seed=2)
  whole = preprocess.fit_zca(images, 0.01)
  whole_out = preprocess.apply_zca(whole, images)
  monkeypatch.setattr(preprocess, "_CHUNK_BYTES", 7 * 12 * 8)  # 7-row chunks.
  chunked = preprocess.fit_zca(images, 0.01)
  np.testing.assert_allclose(chunked.whiten_DxD, whole.whiten_DxD, rtol=1e-6, atol=1e-6)
  np.testing.assert_allclose(preprocess.apply_zca(chunked, images), whole_out, atol=1e-5)


def test_zca_cache_round_trip(tmp_path, monkeypatch):
  images = _correlated_images()
  first = preprocess.fit_zca_cached(images, 0.1, tmp_path, key="abc123")
  assert (tmp_path / "zca-abc123-eps0.1.npz").is_file()

  def fail(*args, **kwargs):
    raise AssertionError("refitted instead of using the cache")

  with monkeypatch.context() as m:
    m.setattr(preprocess, "fit_zca", fail)
    second = preprocess.fit_zca_cached(images, 0.1, tmp_path, key="abc123")
  np.testing.assert_array_equal(first.mean_D, second.mean_D)
  np.testing.assert_array_equal(first.whiten_DxD, second.whiten_DxD)
  # A corrupt cache file is refitted and rewritten.
  (tmp_path / "zca-abc123-eps0.1.npz").write_bytes(b"junk")
  third = preprocess.fit_zca_cached(images, 0.1, tmp_path, key="abc123")
  np.testing.assert_array_equal(first.whiten_DxD, third.whiten_DxD)
  assert sorted(p.name for p in tmp_path.iterdir()) == ["zca-abc123-eps0.1.npz"]


def test_zca_bad_eps():
  with pytest.raises(UserInputError, match="zca_eps"):
    preprocess.fit_zca(_correlated_images(n=10), 0.0)


def test_fit_and_apply_preprocessing(tmp_path):
  images = _correlated_images()
  raw = _raw(images)
  none = preprocess.fit_preprocessing(raw, "none")
  assert preprocess.apply_preprocessing(none, images) is images
  assert preprocess.describe(none) == {"kind": "none", "eps": None}

  std = preprocess.fit_preprocessing(raw, "standardize")
  summary = preprocess.describe(std)
  assert summary["kind"] == "standardize" and len(summary["mean"]) == 3
  assert all(isinstance(v, float) for v in summary["mean"] + summary["std"])
  np.testing.assert_allclose(
      preprocess.apply_preprocessing(std, images).mean(axis=(0, 1, 2)), 0.0, atol=1e-5)

  zca = preprocess.fit_preprocessing(raw, "zca", zca_eps=0.05, cache_dir=tmp_path)
  assert preprocess.describe(zca) == {"kind": "zca", "eps": 0.05}
  assert (tmp_path / "zca-0123abcd-eps0.05.npz").is_file()
  np.testing.assert_allclose(preprocess.apply_preprocessing(zca, images),
                             preprocess.apply_zca(preprocess.fit_zca(images, 0.05), images),
                             atol=1e-6)


def test_unknown_kind():
  with pytest.raises(UserInputError, match="'none', 'standardize', 'zca'") as e:
    preprocess.fit_preprocessing(_raw(_correlated_images(n=10)), "whiten")
  assert "\n" not in str(e.value)
