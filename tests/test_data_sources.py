"""Tests for lottery_jax.data.sources: digits, image folders/archives, the cache, errors."""

import os
import pathlib
import tarfile

import numpy as np
from PIL import Image
import pytest

from lottery_jax.data import sources
from lottery_jax.errors import UserInputError

SHARED_DATA = pathlib.Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(autouse=True)
def _cache_in_tmp(tmp_path, monkeypatch):
  """Keeps the default cache of every test out of the user's home."""
  monkeypatch.setenv("LOTTERY_JAX_CACHE", str(tmp_path / "default_cache"))


def _assert_one_line(e: pytest.ExceptionInfo):
  assert "\n" not in str(e.value) and str(e.value)


def _make_folder(root: pathlib.Path, classes=("cat", "ant", "bee"), per_class=(3, 2),
                 size=(5, 4), mode="RGB", seed=0) -> pathlib.Path:
  """Writes root/{train,test}/<class>/<i>.png with random pixels; returns root."""
  rng = np.random.default_rng(seed)
  channels = {"RGB": 3, "L": 1}[mode]
  for split, n in zip(("train", "test"), per_class):
    for cls in classes:
      d = root / split / cls
      d.mkdir(parents=True)
      for i in range(n):
        pixels = rng.integers(0, 256, size=(size[1], size[0], channels), dtype=np.uint8)
        Image.fromarray(pixels.squeeze(-1) if channels == 1 else pixels, mode).save(
            d / f"{i:03d}.png")
  return root


def _make_tgz(folder: pathlib.Path, archive: pathlib.Path, arcname: str) -> pathlib.Path:
  with tarfile.open(archive, "w:gz") as tar:
    tar.add(folder, arcname=arcname)
  return archive


def test_digits_shapes_split_and_range():
  raw = sources.load_digits(seed=0)
  assert raw.name == "digits" and raw.num_classes == 10 and len(raw.class_names) == 10
  assert raw.train.images.shape[1:] == (8, 8, 1) and raw.train.images.dtype == np.float32
  assert raw.train.labels.dtype == np.int32
  assert len(raw.train.labels) + len(raw.test.labels) == 1797
  assert len(raw.test.labels) == 360  # ceil(0.2 * 1797)
  for split in (raw.train, raw.test):
    assert split.images.min() >= 0.0 and split.images.max() <= 1.0
    assert split.images.max() == 1.0
  # Stratified: each class has about the same share of the test split as of the whole.
  train_counts = np.bincount(raw.train.labels, minlength=10)
  test_counts = np.bincount(raw.test.labels, minlength=10)
  np.testing.assert_allclose(test_counts / (train_counts + test_counts), 0.2, atol=0.01)


def test_digits_deterministic_per_seed():
  a, b, c = sources.load_digits(seed=0), sources.load_digits(seed=0), sources.load_digits(seed=1)
  np.testing.assert_array_equal(a.train.images, b.train.images)
  np.testing.assert_array_equal(a.test.labels, b.test.labels)
  assert a.fingerprint == b.fingerprint != c.fingerprint
  assert not np.array_equal(a.test.labels, c.test.labels)
  assert sources.load_source("digits", seed=1).fingerprint == c.fingerprint


def test_digits_bad_test_fraction():
  with pytest.raises(UserInputError) as e:
    sources.load_digits(test_fraction=1.5)
  _assert_one_line(e)


def test_folder_and_archive_agree_and_labels_follow_sorted_classes(tmp_path):
  folder = _make_folder(tmp_path / "toy")
  archive = _make_tgz(folder, tmp_path / "toy.tar.gz", arcname="toy")
  from_dir = sources.load_image_folder(folder, tmp_path / "cache")
  from_tgz = sources.load_source(str(archive), cache_dir=tmp_path / "cache")
  assert from_dir.name == from_tgz.name == "toy"
  assert from_dir.class_names == from_tgz.class_names == ("ant", "bee", "cat")
  assert from_dir.num_classes == 3
  for a, b in ((from_dir.train, from_tgz.train), (from_dir.test, from_tgz.test)):
    np.testing.assert_array_equal(a.images, b.images)
    np.testing.assert_array_equal(a.labels, b.labels)
  assert from_dir.fingerprint == from_tgz.fingerprint
  assert from_dir.train.images.shape == (9, 4, 5, 3)
  assert from_dir.train.images.dtype == np.float32 and from_dir.train.labels.dtype == np.int32
  np.testing.assert_array_equal(from_dir.train.labels, [0, 0, 0, 1, 1, 1, 2, 2, 2])
  np.testing.assert_array_equal(from_dir.test.labels, [0, 0, 1, 1, 2, 2])
  # Label 0 is 'ant', and images within a class are in file-name order.
  first_ant = np.asarray(Image.open(folder / "train" / "ant" / "000.png"), np.float32) / 255
  np.testing.assert_array_equal(from_dir.train.images[0], first_ant)
  last_cat = np.asarray(Image.open(folder / "test" / "cat" / "001.png"), np.float32) / 255
  np.testing.assert_array_equal(from_dir.test.images[-1], last_cat)


def test_archive_without_top_level_folder(tmp_path):
  folder = _make_folder(tmp_path / "toy")
  flat = _make_tgz(folder, tmp_path / "flat.tgz", arcname=".")
  raw = sources.load_image_folder(flat, tmp_path / "cache")
  assert raw.name == "flat" and raw.train.images.shape == (9, 4, 5, 3)


def test_grayscale_kept_as_one_channel(tmp_path):
  raw = sources.load_image_folder(_make_folder(tmp_path / "gray", mode="L"), tmp_path / "c")
  assert raw.train.images.shape == (9, 4, 5, 1)


def test_mixed_gray_and_rgb_become_rgb(tmp_path):
  folder = _make_folder(tmp_path / "mix")
  Image.fromarray(np.full((4, 5), 7, np.uint8), "L").save(folder / "train" / "bee" / "000.png")
  raw = sources.load_image_folder(folder, tmp_path / "c")
  assert raw.train.images.shape == (9, 4, 5, 3)
  np.testing.assert_array_equal(raw.train.images[3], np.full((4, 5, 3), 7 / 255, np.float32))


def test_16_bit_images_keep_their_range(tmp_path):
  # Pillow's convert('L') clips 16-bit values at 255: every pixel would turn white.
  folder = _make_folder(tmp_path / "deep", mode="L")
  values = np.array([[0, 257, 32896, 65535, 1000]] * 4, np.uint16)
  Image.fromarray(values).save(folder / "train" / "ant" / "000.png")
  with Image.open(folder / "train" / "ant" / "000.png") as im:
    assert im.mode == "I;16"
  raw = sources.load_image_folder(folder, tmp_path / "c")
  expected = np.round(values / 257.0) / 255.0  # 0, 1, 128, 255 and 4 of 255.
  np.testing.assert_allclose(raw.train.images[0, ..., 0], expected, atol=1e-6)


@pytest.mark.parametrize("dtype,mode", [(np.float32, "F"), (np.int32, "I")])
def test_images_without_a_fixed_range_are_refused(tmp_path, dtype, mode):
  folder = _make_folder(tmp_path / "float", mode="L")
  Image.fromarray(np.full((4, 5), 3, dtype)).save(folder / "test" / "bee" / "001.tif")
  with pytest.raises(UserInputError, match=rf"'test/bee/001.tif' .* has Pillow mode '{mode}'"
                     r" .* convert the images") as e:
    sources.load_image_folder(folder, tmp_path / "c")
  _assert_one_line(e)


def test_cache_follows_the_images_content_not_their_mtimes(tmp_path):
  # Swap two images of one size, keeping every file's mtime: another dataset, a new decode.
  folder = _make_folder(tmp_path / "toy")
  a, b = folder / "train" / "ant" / "000.png", folder / "train" / "bee" / "000.png"
  for p, value in ((a, 10), (b, 200)):  # Uncompressed: the same size in bytes.
    Image.fromarray(np.full((4, 5, 3), value, np.uint8)).save(p, compress_level=0)
  cache = tmp_path / "cache"
  first = sources.load_image_folder(folder, cache)
  times = [(p.stat().st_atime_ns, p.stat().st_mtime_ns) for p in (a, b)]
  bytes_a, bytes_b = a.read_bytes(), b.read_bytes()
  assert len(bytes_a) == len(bytes_b)
  a.write_bytes(bytes_b)
  b.write_bytes(bytes_a)
  for p, t in zip((a, b), times):
    os.utime(p, ns=t)
  second = sources.load_image_folder(folder, cache)
  fresh = sources.load_image_folder(folder, tmp_path / "fresh_cache")
  np.testing.assert_array_equal(second.train.images, fresh.train.images)
  assert second.fingerprint == fresh.fingerprint != first.fingerprint
  np.testing.assert_array_equal(second.train.images[0], first.train.images[3])


def test_second_load_uses_cache(tmp_path, monkeypatch):
  archive = _make_tgz(_make_folder(tmp_path / "toy"), tmp_path / "toy.tar.gz", arcname="toy")
  cache = tmp_path / "cache"
  first = sources.load_image_folder(archive, cache)
  assert len(list(cache.glob("*.npz"))) == 1
  assert not list(cache.glob("*.tmp"))

  def fail(*args, **kwargs):
    raise AssertionError("decoded again instead of using the cache")

  monkeypatch.setattr(Image, "open", fail)
  second = sources.load_image_folder(archive, cache)
  np.testing.assert_array_equal(first.train.images, second.train.images)
  np.testing.assert_array_equal(first.test.labels, second.test.labels)
  assert first.class_names == second.class_names and first.fingerprint == second.fingerprint


def test_corrupt_cache_is_rebuilt(tmp_path):
  archive = _make_tgz(_make_folder(tmp_path / "toy"), tmp_path / "toy.tar.gz", arcname="toy")
  cache = tmp_path / "cache"
  first = sources.load_image_folder(archive, cache)
  (cache_file,) = cache.glob("*.npz")
  cache_file.write_bytes(b"not an npz")
  second = sources.load_image_folder(archive, cache)
  np.testing.assert_array_equal(first.train.images, second.train.images)
  with np.load(cache_file) as npz:  # Rewritten as a valid cache.
    assert npz["train_images"].dtype == np.uint8


def test_default_cache_dir_from_env(tmp_path, monkeypatch):
  monkeypatch.setenv("LOTTERY_JAX_CACHE", str(tmp_path / "x"))
  assert sources.default_cache_dir() == tmp_path / "x"
  monkeypatch.delenv("LOTTERY_JAX_CACHE")
  assert sources.default_cache_dir() == pathlib.Path.home() / ".cache" / "lottery_jax"


def test_corrupt_archive(tmp_path):
  archive = _make_tgz(_make_folder(tmp_path / "toy"), tmp_path / "toy.tar.gz", arcname="toy")
  data = archive.read_bytes()
  archive.write_bytes(data[:len(data) // 2])  # Truncated.
  with pytest.raises(UserInputError, match="toy.tar.gz") as e:
    sources.load_source(str(archive), cache_dir=tmp_path / "cache")
  _assert_one_line(e)
  archive.write_bytes(b"\x00" * 100)  # Not gzip at all.
  with pytest.raises(UserInputError, match="toy.tar.gz") as e:
    sources.load_source(str(archive), cache_dir=tmp_path / "cache")
  _assert_one_line(e)


def test_corrupt_image_names_file(tmp_path):
  folder = _make_folder(tmp_path / "toy")
  (folder / "test" / "bee" / "001.png").write_bytes(b"garbage")
  with pytest.raises(UserInputError, match=r"test/bee/001\.png") as e:
    sources.load_image_folder(folder, tmp_path / "cache")
  _assert_one_line(e)


@pytest.mark.parametrize("source", ["nowhere/data.tar.gz", "./missing", "x.tgz", "/no/such"])
def test_missing_path(tmp_path, monkeypatch, source):
  monkeypatch.chdir(tmp_path)
  with pytest.raises(UserInputError, match="data source not found") as e:
    sources.load_source(source)
  _assert_one_line(e)


def test_missing_split(tmp_path):
  folder = _make_folder(tmp_path / "toy")
  (folder / "test").rename(folder / "val")
  with pytest.raises(UserInputError, match=r"no test split; found splits \['train', 'val'\]"):
    sources.load_image_folder(folder, tmp_path / "cache")


def test_class_sets_must_match(tmp_path):
  folder = _make_folder(tmp_path / "toy")
  (folder / "test" / "cat").rename(folder / "test" / "dog")
  with pytest.raises(UserInputError, match="class folders differ"):
    sources.load_image_folder(folder, tmp_path / "cache")


def test_mismatched_image_size_names_file(tmp_path):
  folder = _make_folder(tmp_path / "toy")
  Image.new("RGB", (6, 4)).save(folder / "test" / "bee" / "000.png")
  with pytest.raises(UserInputError, match=r"test/bee/000\.png.*same size") as e:
    sources.load_image_folder(folder, tmp_path / "cache")
  _assert_one_line(e)


def test_not_an_archive_or_folder(tmp_path):
  f = tmp_path / "data.zip"
  f.write_bytes(b"PK")
  with pytest.raises(UserInputError, match="directory or"):
    sources.load_source(str(f))


def test_tfds_unknown_name_or_missing_dependency():
  # tensorflow-datasets may be installed without tensorflow: either failure is one line.
  with pytest.raises(UserInputError) as e:
    sources.load_source("no_such_dataset_xyz")
  _assert_one_line(e)
  assert "cifar10" in str(e.value) or "pip install 'lottery_jax[tfds]'" in str(e.value)


def test_tfds_known_name_without_network_or_tensorflow(tmp_path):
  # Without tensorflow this asks to install it; with it, the download fails offline (or,
  # on a machine with internet, would succeed, which this test does not want to do).
  pytest.importorskip("tensorflow_datasets")
  try:
    import tensorflow  # noqa: F401  pylint: disable=g-import-not-at-top,unused-import
  except ImportError:
    with pytest.raises(UserInputError, match=r"pip install 'lottery_jax\[tfds\]'") as e:
      sources.load_tfds("mnist", data_dir=str(tmp_path))
    _assert_one_line(e)
  else:
    pytest.skip("tensorflow is installed; not attempting a download")


@pytest.mark.skipif(not (SHARED_DATA / "cifar10-jpeg.tar.gz").exists(),
                    reason="shared CIFAR-10 archive absent")
def test_shared_cifar10_archive_layout():
  # Reads only the first few members: checks the layout the loader expects, not a full load.
  with tarfile.open(SHARED_DATA / "cifar10-jpeg.tar.gz", "r:gz") as tar:
    names = [m.name for _, m in zip(range(20), tar) if m.isfile()]
  assert names and all(n.startswith("cifar10-jpeg/") and len(n.split("/")) == 4 for n in names)
