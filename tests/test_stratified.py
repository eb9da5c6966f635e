"""Stratified random subsets: every sample a run takes from a split is class-balanced and
drawn from a named seed, never a prefix of a class-ordered source."""

import json
import pathlib

import jax
import numpy as np
import pytest
from PIL import Image

from lottery_jax import runners
from lottery_jax.data import dataset, stratified
from lottery_jax.errors import UserInputError

import tiny

CLASSES = ("ant", "bee", "cat", "dog")


def class_sorted_labels(per_class=(7, 7, 7, 7)):
  return np.concatenate([np.full(n, c) for c, n in enumerate(per_class)])


def balanced(counts) -> bool:
  return max(counts) - min(counts) <= 1


def test_order_is_a_permutation_whose_every_prefix_and_slice_is_balanced():
  labels = class_sorted_labels()
  order = stratified.stratified_order(labels, 4, jax.random.key(3))
  assert sorted(order.tolist()) == list(range(len(labels)))
  for n in range(1, len(labels) + 1):
    assert balanced(np.bincount(labels[order[:n]], minlength=4)), n
  for start in range(0, 20):
    assert balanced(np.bincount(labels[order[start:start + 6]], minlength=4)), start


def test_order_is_a_pure_function_of_the_key():
  labels = class_sorted_labels()
  a = stratified.stratified_order(labels, 4, jax.random.key(0))
  np.testing.assert_array_equal(a, stratified.stratified_order(labels, 4, jax.random.key(0)))
  assert not np.array_equal(a, stratified.stratified_order(labels, 4, jax.random.key(1)))
  # Within a class the draw is random, not the source's order.
  firsts = a[:4]
  assert not np.array_equal(np.sort(firsts), [0, 7, 14, 21])


def test_unequal_classes_stay_balanced_until_the_smallest_runs_out():
  labels = class_sorted_labels((3, 9, 9, 9))
  order = stratified.stratified_order(labels, 4, jax.random.key(0))
  for n in range(1, 13):
    assert balanced(np.bincount(labels[order[:n]], minlength=4))
  assert sorted(order.tolist()) == list(range(30))


def test_split_indices_hold_out_a_balanced_validation_split_disjoint_from_train():
  labels = class_sorted_labels((10, 10, 10, 10))
  train, val = dataset.split_indices(labels, 4, validation_examples=8, train_examples=20,
                                     split_seed=5)
  assert len(val) == 8 and len(train) == 20 and not set(train) & set(val)
  assert np.bincount(labels[val], minlength=4).tolist() == [2, 2, 2, 2]
  assert np.bincount(labels[train], minlength=4).tolist() == [5, 5, 5, 5]
  # Not the first examples of each class (the source's order).
  assert set(train) != {i for c in range(4) for i in range(10 * c, 10 * c + 5)}
  again = dataset.split_indices(labels, 4, 8, 20, split_seed=5)
  np.testing.assert_array_equal(train, again[0])
  assert not np.array_equal(train, dataset.split_indices(labels, 4, 8, 20, split_seed=6)[0])


def test_split_indices_refuse_what_the_split_cannot_give():
  labels = class_sorted_labels((10, 10, 10, 2))
  with pytest.raises(UserInputError, match="data.validation_examples=16 needs at least 4"):
    dataset.split_indices(labels, 4, validation_examples=16, train_examples=0, split_seed=0)
  with pytest.raises(UserInputError, match="data.train_examples=100 is more than"):
    dataset.split_indices(class_sorted_labels(), 4, 0, 100, split_seed=0)


def _class_folder(root: pathlib.Path, train_per_class=30, test_per_class=5) -> pathlib.Path:
  """A class-folder source whose files are read in class order, with images that differ."""
  rng = np.random.default_rng(0)
  for split, n in (("train", train_per_class), ("test", test_per_class)):
    for c, name in enumerate(CLASSES):
      folder = root / split / name
      folder.mkdir(parents=True)
      for i in range(n):
        pixels = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
        pixels[..., c % 3] //= 2  # A class signal.
        Image.fromarray(pixels, "RGB").save(folder / f"{i:03d}.png")
  return root


@pytest.fixture(scope="module")
def folder_run(tmp_path_factory):
  root = tmp_path_factory.mktemp("stratified")
  source = _class_folder(root / "data")
  c = tiny.lottery_config(6)
  c.data.source = str(source)
  c.data.cache_dir = str(root / "cache")
  c.data.validation_examples = 8
  c.data.train_examples = 100
  c.train.batch_size = 16
  c.train.checkpoint_every = 100
  c.distilled.images_per_class = 2
  c.distilled.train.num_steps = 2
  c.lottery.producers = ("imp", "distilled")
  c.lottery.rounds = 1
  c.stability.num_alphas = 3
  c.stability.lmc_examples = 21
  c.stability.grid_size = 2
  c.stability.grid_examples = 10
  c.stability.hessian_probes = 4
  c.stability.hessian_batches = 2
  c.stability.hessian_batch_size = 6
  c.stability.detail_rounds = (1,)
  c.lock()
  workdir = root / "run"
  return workdir, runners.run(c, str(workdir))


def test_every_recorded_analysis_sample_is_balanced(folder_run):
  workdir, results = folder_run
  assert results["num_validation_examples"] == 8
  assert results["stability"]["analysis_sample"]["train_examples_per_class"] == [25] * 4
  lmc_files = sorted(workdir.glob("replicate_0/**/lmc.json"))
  assert len(lmc_files) == 3  # dense, IMP round 1, distilled round 1.
  for path in lmc_files:
    rec = json.loads(path.read_text())
    assert sum(rec["train"]["examples_per_class"]) == 21
    assert balanced(rec["train"]["examples_per_class"]), path
    assert rec["test"]["examples_per_class"] == [5] * 4
  landscapes = sorted(workdir.glob("replicate_0/**/landscape.npz"))
  assert len(landscapes) == 2
  for path in landscapes:
    with np.load(path) as f:
      counts = f["examples_per_class"].tolist()
    assert sum(counts) == 10 and balanced(counts), path
  hessians = sorted(workdir.glob("replicate_0/**/hessian.json"))
  assert len(hessians) == 3  # dense, IMP and distilled at round 1.
  for path in hessians:
    rec = json.loads(path.read_text())
    assert sum(rec["examples_per_class"]) == 12 and balanced(rec["examples_per_class"])
  for producer in ("imp", "distilled"):
    counts = results["stability"]["landscape"][producer][0]["examples_per_class"]
    assert sum(counts) == 10 and balanced(counts)


def test_validation_accuracy_is_measured_on_the_held_out_examples(folder_run):
  _, results = folder_run
  for producer in ("dense", "imp", "distilled"):
    for rec in results["producers"][producer]:
      # An accuracy on the 8 held-out examples is a whole number of eighths.
      assert rec["val_accuracy_mean"] * 8 == pytest.approx(round(rec["val_accuracy_mean"] * 8))
      assert rec["val_accuracies"] == [rec["val_accuracy_mean"]]
