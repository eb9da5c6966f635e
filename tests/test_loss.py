"""lottery_jax.loss against hand computations: forward modes, cross-entropy, accuracy, the
weighted sums of a padded batch and the padded evaluation loop."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lottery_jax import loss, models
from lottery_jax import train as train_lib

# numpy, not jax, at import time: starting the JAX backend while tests are collected would
# freeze XLA flags before lottery_jax.main (imported by other test modules) sets them.
LOGITS = np.array([[2.0, 0.0], [0.0, 1.0], [3.0, 3.0]], np.float32)
LABELS = np.array([0, 0, 1], np.int32)
# -log softmax of the label's logit, row by row.
EXPECTED_CE = [math.log(1 + math.exp(-2.0)), math.log(1 + math.exp(1.0)), math.log(2.0)]


def test_cross_entropy_and_accuracy_match_a_hand_computation():
  np.testing.assert_allclose(loss.cross_entropy_per_example(LOGITS, LABELS), EXPECTED_CE,
                             rtol=1e-6)
  assert float(loss.cross_entropy(LOGITS, LABELS)) == pytest.approx(np.mean(EXPECTED_CE))
  # Row 3 ties: argmax takes the first class, so only row 1 is correct.
  assert loss.correct(LOGITS, LABELS).tolist() == [True, False, False]
  assert float(loss.accuracy(LOGITS, LABELS)) == pytest.approx(1 / 3)


def test_weighted_sums_leave_out_zero_weight_rows():
  loss_sum, correct_sum = loss.weighted_sums(LOGITS, LABELS, jnp.array([1.0, 1.0, 0.0]))
  assert float(loss_sum) == pytest.approx(EXPECTED_CE[0] + EXPECTED_CE[1])
  assert float(correct_sum) == 1.0


def test_padded_batches_cover_every_example_once_with_weight_one():
  images = np.arange(7 * 2, dtype=np.float32).reshape(7, 2, 1, 1)
  labels = np.arange(7, dtype=np.int32)
  batches = list(loss.padded_batches(images, labels, 3))
  assert [x.shape for x, _, _ in batches] == [(3, 2, 1, 1)] * 3
  weights = np.concatenate([w for _, _, w in batches])
  assert weights.tolist() == [1.0] * 7 + [0.0] * 2
  got = np.concatenate([y for _, y, _ in batches])[weights > 0]
  np.testing.assert_array_equal(got, labels)
  assert not batches[-1][0][1:].any()  # The padding is zeros.


def test_forward_updates_batch_stats_only_in_training_mode():
  model = models.get_model("convnet", 3, width=4, depth=1, norm="batch")
  params, stats = train_lib.init_variables(model, jax.random.key(0), (8, 8, 1))
  x = jax.random.normal(jax.random.key(1), (5, 8, 8, 1)) + 2.0
  logits, same = loss.forward(model, params, stats, x, train=False)
  assert logits.shape == (5, 3) and same is stats
  _, updated = loss.forward(model, params, stats, x, train=True)
  assert jax.tree.structure(updated) == jax.tree.structure(stats)
  assert any(not np.allclose(a, b) for a, b in zip(jax.tree.leaves(updated),
                                                   jax.tree.leaves(stats)))
  direct = model.apply({"params": params, "batch_stats": stats}, x, train=False)
  np.testing.assert_array_equal(logits, direct)


def test_evaluate_equals_the_mean_over_all_examples():
  model = models.get_model("mlp", 3, hidden=(8,))
  params, stats = train_lib.init_variables(model, jax.random.key(0), (4, 4, 1))
  rng = np.random.default_rng(0)
  images = rng.normal(size=(11, 4, 4, 1)).astype(np.float32)
  labels = rng.integers(0, 3, 11).astype(np.int32)
  logits = model.apply({"params": params}, images, train=False)
  got = loss.evaluate(loss.make_eval_step(model), params, stats, images, labels, batch_size=4)
  assert got["loss"] == pytest.approx(float(loss.cross_entropy(logits, labels)), rel=1e-6)
  assert got["accuracy"] == pytest.approx(float(loss.accuracy(logits, labels)))
