"""data.train_examples: a class-balanced prefix of the train split; preprocessing sees it all."""

import numpy as np
import pytest

from lottery_jax import default_config
from lottery_jax.data.dataset import class_balanced_prefix, load_dataset
from lottery_jax.errors import UserInputError


def test_train_examples_keeps_the_first_images_of_every_class_in_source_order():
  labels = np.array([2, 0, 1, 0, 2, 1, 0, 1, 2, 2])
  np.testing.assert_array_equal(class_balanced_prefix(labels, 6, 3), [0, 1, 2, 3, 4, 5])
  np.testing.assert_array_equal(class_balanced_prefix(labels, 3, 3), [0, 1, 2])
  with pytest.raises(UserInputError, match="needs 4 train examples of class 0, which has 3"):
    class_balanced_prefix(labels, 12, 3)  # 4 per class: class 0 has 3.
  with pytest.raises(UserInputError, match="no example per class"):
    class_balanced_prefix(labels, 2, 3)


def test_train_examples_subsets_digits_but_preprocessing_sees_the_whole_split():
  data = default_config.get_config().data
  whole = load_dataset(data)
  with data.unlocked():
    data.train_examples = 100
  part = load_dataset(data)
  assert len(part.train_labels) == 100
  np.testing.assert_array_equal(np.bincount(part.train_labels), [10] * 10)
  # Same statistics: the kept train images are exactly the whole split's, preprocessed alike.
  keep = class_balanced_prefix(whole.train_labels, 100, 10)
  np.testing.assert_array_equal(part.train_images, whole.train_images[keep])
  np.testing.assert_array_equal(part.test_images, whole.test_images)
