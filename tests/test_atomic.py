"""lottery_jax.atomic: a failed write leaves the old file and no temporary file."""

import numpy as np
import pytest

from lottery_jax import atomic


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
  path = tmp_path / "sub" / "result.json"
  atomic.write_text(path, "old\n")
  assert path.read_text() == "old\n"

  def fails_midway(f):
    f.write(b"half of the new")
    raise KeyboardInterrupt

  with pytest.raises(KeyboardInterrupt):
    atomic.write(path, fails_midway)
  assert path.read_text() == "old\n"
  assert sorted(p.name for p in path.parent.iterdir()) == ["result.json"]


def test_write_npz_keeps_the_name_and_round_trips(tmp_path):
  path = tmp_path / "mask.npz"
  atomic.write_npz(path, a=np.arange(3), b=np.ones((2, 2), bool))
  with np.load(path) as f:
    np.testing.assert_array_equal(f["a"], np.arange(3))
    assert f["b"].dtype == bool and f["b"].all()
  assert (path.stat().st_mode & 0o777) == 0o644
