"""Tests for lottery_jax.data.distilled_npz: the published MTT file, round trips, bad
files."""

import json
import pathlib

import numpy as np
import pytest

from lottery_jax.data import distilled_npz as distilled
from lottery_jax.errors import UserInputError

SHARED_DATA = pathlib.Path(__file__).resolve().parents[1].parent / "shared" / "data"
MTT_FILE = SHARED_DATA / "cifar10_ipc10_mtt.npz"
METADATA = {"name": "toy", "preprocessing": {"mean_std_normalization": True}}


def _write(path, images, labels, metadata=METADATA):
  np.savez(path, images=images, labels=labels, metadata=np.asarray(json.dumps(metadata)))
  return path


def _load(path, **kwargs):
  return distilled.load_distilled(path, **{"image_shape_HWC": (4, 5, 3), "num_classes": 3,
                                           **kwargs})


def _expect_error(path, match, **kwargs):
  with pytest.raises(UserInputError, match=match) as e:
    _load(path, **kwargs)
  assert "\n" not in str(e.value)


@pytest.mark.skipif(not MTT_FILE.exists(), reason="shared distilled file absent")
def test_shared_mtt_file():
  d = distilled.load_distilled(MTT_FILE, image_shape_HWC=(32, 32, 3), num_classes=10)
  assert d.images.shape == (100, 32, 32, 3) and d.images.dtype == np.float32
  assert d.images.flags.c_contiguous
  assert d.labels.dtype == np.int32
  np.testing.assert_array_equal(np.bincount(d.labels), [10] * 10)
  assert distilled.preprocessing_kind(d.metadata) == ("zca", 0.1)
  with np.load(MTT_FILE) as npz:  # NCHW on disk.
    np.testing.assert_array_equal(d.images[7], npz["images"][7].transpose(1, 2, 0))


def test_save_load_round_trip(tmp_path):
  rng = np.random.default_rng(0)
  images = rng.normal(size=(6, 4, 5, 3)).astype(np.float32)
  labels = np.array([0, 0, 1, 1, 2, 2])
  path = tmp_path / "set.npz"
  distilled.save_distilled(path, images, labels, METADATA)
  with np.load(path) as npz:  # The published layout: NCHW float32, int64 labels.
    assert npz["images"].shape == (6, 3, 4, 5) and npz["labels"].dtype == np.int64
  d = _load(path)
  np.testing.assert_array_equal(d.images, images)
  np.testing.assert_array_equal(d.labels, labels)
  assert d.metadata == METADATA
  assert distilled.preprocessing_kind(d.metadata) == ("standardize", None)
  assert [p.name for p in tmp_path.iterdir()] == ["set.npz"]


def test_nhwc_file_accepted(tmp_path):
  images = np.zeros((3, 4, 5, 3), np.float32)
  d = _load(_write(tmp_path / "a.npz", images, np.arange(3)))
  assert d.images.shape == (3, 4, 5, 3)


def test_wrong_shape(tmp_path):
  path = _write(tmp_path / "a.npz", np.zeros((3, 4, 4, 3), np.float32), np.arange(3))
  _expect_error(path, r"expected images of shape \(N, 4, 5, 3\).*got shape \(3, 4, 4, 3\)")


def test_label_out_of_range(tmp_path):
  path = _write(tmp_path / "a.npz", np.zeros((3, 4, 5, 3), np.float32), np.array([0, 3, 1]))
  _expect_error(path, r"label 3 is outside the valid range \[0, 3\)")
  path = _write(tmp_path / "b.npz", np.zeros((3, 4, 5, 3), np.float32), np.array([0, -1, 1]))
  _expect_error(path, r"label -1")


def test_length_mismatch(tmp_path):
  path = _write(tmp_path / "a.npz", np.zeros((3, 4, 5, 3), np.float32), np.arange(2))
  _expect_error(path, r"labels must have shape \(3,\)")


def test_missing_file(tmp_path):
  _expect_error(tmp_path / "nope.npz", "not found")


def test_corrupt_file(tmp_path):
  path = tmp_path / "bad.npz"
  path.write_bytes(b"this is not a zip file at all")
  _expect_error(path, "bad.npz")
  np.save(tmp_path / "single.npy", np.zeros(3))
  _expect_error(tmp_path / "single.npy", "not an .npz")


def test_missing_key(tmp_path):
  path = tmp_path / "a.npz"
  np.savez(path, images=np.zeros((3, 4, 5, 3), np.float32))
  _expect_error(path, r"lacks \['labels', 'metadata'\]")


def test_bad_metadata(tmp_path):
  path = tmp_path / "a.npz"
  np.savez(path, images=np.zeros((3, 4, 5, 3), np.float32), labels=np.arange(3),
           metadata=np.asarray("{not json"))
  _expect_error(path, "not valid JSON")


def test_preprocessing_kind():
  assert distilled.preprocessing_kind({}) == ("none", None)
  assert distilled.preprocessing_kind(
      {"preprocessing": {"mean_std_normalization": False}}) == ("none", None)
  assert distilled.preprocessing_kind(
      {"preprocessing": {"zca": {"eps": 0.5}, "mean_std_normalization": False}}) == ("zca", 0.5)
  with pytest.raises(UserInputError, match="eps"):
    distilled.preprocessing_kind({"preprocessing": {"zca": {"fit_on": "train"}}})
