"""data.train_examples: a class-balanced prefix of the train split; preprocessing sees it all."""

import numpy as np
import pytest

from lottery_jax import default_config
from lottery_jax.data.dataset import load_dataset, split_indices
from lottery_jax.errors import UserInputError


def test_train_examples_is_a_stratified_random_draw_not_a_prefix():
  labels = np.array([2, 0, 1, 0, 2, 1, 0, 1, 2, 2, 0, 1, 2, 0, 1])
  keep, val = split_indices(labels, 3, 0, 6, split_seed=0)
  assert val.size == 0 and np.bincount(labels[keep]).tolist() == [2, 2, 2]
  assert len({tuple(split_indices(labels, 3, 0, 6, split_seed=s)[0]) for s in range(6)}) > 1
  with pytest.raises(UserInputError, match="data.train_examples=3 needs at least 1 examples "
                                           "of every class, but class 0 has 0"):
    split_indices(np.array([1, 1, 2, 2]), 3, 0, 3, split_seed=0)
  with pytest.raises(UserInputError, match="no example per class"):
    split_indices(labels, 3, 0, 2, split_seed=0)


def test_train_examples_subsets_digits_but_preprocessing_sees_the_whole_split():
  data = default_config.get_config().data
  whole = load_dataset(data)
  with data.unlocked():
    data.train_examples = 100
  part = load_dataset(data)
  assert len(part.train_labels) == 100
  np.testing.assert_array_equal(np.bincount(part.train_labels), [10] * 10)
  # Same statistics: the kept train images are exactly the whole split's, preprocessed alike.
  keep, _ = split_indices(whole.train_labels, 10, 0, 100, split_seed=0)
  np.testing.assert_array_equal(part.train_images, whole.train_images[keep])
  np.testing.assert_array_equal(part.test_images, whole.test_images)
