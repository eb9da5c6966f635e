"""The TFDS-to-class-folder export writes the archive layout the image-folder loader reads."""

import sys

import numpy as np
import pytest

from lottery_jax.data import export, image_folder
from lottery_jax.errors import UserInputError


def test_png_archive_round_trips_through_the_image_folder_loader(tmp_path):
  rng = np.random.default_rng(0)
  train = [(rng.integers(0, 256, (4, 4, 3), dtype=np.uint8), label) for label in (0, 1, 1, 0)]
  test = [(rng.integers(0, 256, (4, 4, 3), dtype=np.uint8), label) for label in (1, 0)]
  out = str(tmp_path / "tiny.tar.gz")
  assert export.write_archive({"train": train, "test": test}, ["cat", "dog"], out, "png") == 6
  data = image_folder.load_image_folder(out, cache_dir=tmp_path / "cache")
  assert data.class_names == ("cat", "dog")
  # Labels index the sorted class folders; within a class, files in index order.
  want = [img for img, label in train if label == 0] + [img for img, label in train if label == 1]
  np.testing.assert_array_equal(np.round(data.train.images * 255).astype(np.uint8), want)
  np.testing.assert_array_equal(data.train.labels, [0, 0, 1, 1])
  np.testing.assert_array_equal(data.test.labels, [0, 1])


def test_bad_format_and_suffix_are_refused(tmp_path):
  with pytest.raises(UserInputError, match="valid choices: 'jpeg', 'png'"):
    export.write_archive({}, [], str(tmp_path / "a.tar.gz"), "gif")
  with pytest.raises(UserInputError, match="must end in .tar.gz"):
    export.write_archive({}, [], str(tmp_path / "a.zip"))


def test_missing_tfds_is_one_line_naming_the_extra(tmp_path, monkeypatch, capsys):
  monkeypatch.setitem(sys.modules, "tensorflow_datasets", None)  # import raises ImportError.
  with pytest.raises(SystemExit) as exit_info:
    export.main(["--out", str(tmp_path / "c.tar.gz")])
  assert exit_info.value.code == 2
  lines = capsys.readouterr().err.strip().splitlines()
  assert len(lines) == 1 and lines[0].startswith("lottery_jax.data.export: error: ")
  assert lines[0].endswith("pip install -e '.[tfds]'")
  assert not (tmp_path / "c.tar.gz").exists()
