"""Hessian diagonal: Hutchinson against the exact diagonal, masks, HVP, summary table."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from lottery_jax import masks as masks_lib
from lottery_jax import pruning, stability, tree
from lottery_jax import train as train_lib
from lottery_jax.models import get_model


def mlp_problem(num_batches=2, batch_size=32):
  """An MLP 8 -> 16 -> 3 (195 weights) and random batches of 2x2x2 'images'."""
  model = get_model("mlp", 3, hidden=(16,))
  params, _ = train_lib.init_variables(model, jax.random.key(0), (2, 2, 2))
  rng = np.random.default_rng(0)
  batches = [{"image": jnp.asarray(rng.normal(size=(batch_size, 2, 2, 2)), jnp.float32),
              "label": jnp.asarray(rng.integers(0, 3, batch_size), jnp.int32)}
             for _ in range(num_batches)]
  return model, params, batches


def exact_diagonal(loss_fn, params, batches):
  flat, unravel = ravel_pytree(params)
  diags = [jnp.diag(jax.hessian(lambda f: loss_fn(unravel(f), b))(flat)) for b in batches]
  return np.asarray(jnp.mean(jnp.stack(diags), axis=0))


def relative_error(estimate, exact):
  return float(np.linalg.norm(estimate - exact) / np.linalg.norm(exact))


def test_hutchinson_matches_the_exact_diagonal():
  model, params, batches = mlp_problem()
  loss_fn = stability.classification_loss(model)
  exact = exact_diagonal(loss_fn, params, batches)
  diag = stability.hessian_diagonal(loss_fn, params, batches, jax.random.key(1), 2000,
                                    probe_batch=500)
  assert jax.tree.structure(diag) == jax.tree.structure(params)
  # Stated tolerance: 10% relative (L2) error with 2,000 probes (measured 5.1%).
  assert relative_error(np.asarray(ravel_pytree(diag)[0]), exact) < 0.1


def test_estimate_is_the_mean_of_probes_drawn_from_fold_in_of_the_probe_index():
  model, params, batches = mlp_problem(num_batches=1)
  loss_fn = stability.classification_loss(model)
  key = jax.random.key(5)
  batch_key = jax.random.fold_in(key, 0)

  @jax.jit
  def probe(i):
    z = tree.random_rademacher_like(jax.random.fold_in(batch_key, i), params)
    return ravel_pytree(z)[0] * ravel_pytree(stability.hvp(loss_fn, params, batches[0], z))[0]

  expected = sum(np.asarray(probe(i)) for i in range(3)) / 3
  diag = stability.hessian_diagonal(loss_fn, params, batches, key, 3)
  np.testing.assert_allclose(np.asarray(ravel_pytree(diag)[0]), expected, rtol=1e-5, atol=1e-7)


def test_same_probes_same_estimate_whatever_the_blocking():
  model, params, batches = mlp_problem(num_batches=1)
  loss_fn = stability.classification_loss(model)
  estimates = [np.asarray(ravel_pytree(stability.hessian_diagonal(
      loss_fn, params, batches, jax.random.key(2), 503, probe_batch=b, unroll=u))[0])
               for b, u in ((1, 1), (7, 3), (500, 1))]  # 503 = 23 x 21 + 20: padded calls.
  for other in estimates[1:]:
    np.testing.assert_allclose(other, estimates[0], rtol=1e-4,
                               atol=1e-6 * np.abs(estimates[0]).max())


@pytest.mark.parametrize("probe_batch", [1, 7])
def test_probe_call_is_traced_once_whatever_num_probes(probe_batch):
  chex.clear_trace_counter()
  model, params, batches = mlp_problem(num_batches=1)
  base = stability.classification_loss(model)
  # A fresh static argument (a fresh jit cache entry), traced once per trace of the call.
  loss_fn = chex.assert_max_traces(lambda p, b: base(p, b), n=1)
  for num_probes in (15, 30, 300):
    stability.hessian_diagonal(loss_fn, params, batches, jax.random.key(3), num_probes,
                               probe_batch=probe_batch, unroll=2)


def test_masked_estimate_is_exactly_zero_on_pruned_weights():
  model, params, batches = mlp_problem()
  m = pruning.prune(params, masks_lib.init_masks(params), 0.5)
  loss_fn = stability.classification_loss(model)
  diag = stability.hessian_diagonal(loss_fn, params, batches, jax.random.key(1), 2000, masks=m,
                                    probe_batch=250)
  # Masks hold 0-d True on never-pruned leaves (biases): broadcast to the params' shapes.
  full = jax.tree.map(lambda keep, p: np.broadcast_to(np.asarray(keep), p.shape), m, params)
  for d, keep in zip(jax.tree.leaves(diag), jax.tree.leaves(full)):
    assert np.all(np.asarray(d)[~keep] == 0.0)
  # On kept weights it still estimates the true diagonal.
  kept = np.asarray(ravel_pytree(full)[0])
  exact = exact_diagonal(loss_fn, params, batches)
  assert relative_error(np.asarray(ravel_pytree(diag)[0])[kept], exact[kept]) < 0.1


def test_hvp_equals_the_exact_hessian_times_the_direction():
  model, params, batches = mlp_problem(num_batches=1)
  loss_fn = stability.classification_loss(model)
  flat, unravel = ravel_pytree(params)
  hessian = jax.hessian(lambda f: loss_fn(unravel(f), batches[0]))(flat)
  z = jax.random.rademacher(jax.random.key(3), flat.shape, jnp.float32)
  hz = stability.hvp(loss_fn, params, batches[0], unravel(z))
  np.testing.assert_allclose(np.asarray(ravel_pytree(hz)[0]), np.asarray(hessian @ z),
                             rtol=1e-4, atol=1e-6)


def test_summary_covers_kept_prunable_weights_and_table_has_one_row_each():
  params = {"Dense_0": {"kernel": jnp.array([[1.0, -2.0], [3.0, 4.0]]),
                        "bias": jnp.array([100.0, 100.0])},
            "Dense_1": {"kernel": jnp.array([[50.0]])}}
  # Biases are never pruned (0-d mask); Dense_1 is a layer left dense (lottery.dense_layers).
  m = {"Dense_0": {"kernel": jnp.array([[True, True], [True, False]]),
                   "bias": jnp.array(True)},
       "Dense_1": {"kernel": jnp.array(True)}}
  s = stability.summary(params, m)
  assert (s["min"], s["max"], s["count"]) == (-2.0, 3.0, 3)
  assert s["mean"] == pytest.approx(2.0 / 3) and s["mean_abs"] == pytest.approx(2.0)
  assert s["std"] == pytest.approx(np.std([1.0, -2.0, 3.0]))
  assert stability.summary(params)["count"] == 5  # Without masks: every kernel.
  table = stability.markdown_table({"imp": s, "distilled": s})
  assert table.count("\n") == 4 and "| imp |" in table and "±" in table


def quadratic_problem(off_diagonal: float):
  """loss(p) = 0.5 vec(kernel)^T A vec(kernel) for a (4, 5) kernel: Hessian A exactly, with
  diagonal 1..20 and off-diagonal entries of size `off_diagonal`."""
  rng = np.random.default_rng(1)
  noise = rng.normal(size=(20, 20)) * off_diagonal
  a = np.diag(np.arange(1.0, 21.0)) + (noise + noise.T) / 2 * (1 - np.eye(20))
  params = {"Dense_0": {"kernel": jnp.zeros((4, 5), jnp.float32)}}
  a_j = jnp.asarray(a, jnp.float32)
  loss_fn = lambda p, batch: 0.5 * p["Dense_0"]["kernel"].ravel() @ a_j @ \
      p["Dense_0"]["kernel"].ravel()
  return loss_fn, params, a


def test_probe_groups_average_to_the_plain_estimate():
  model, params, batches = mlp_problem()
  loss_fn = stability.classification_loss(model)
  key = jax.random.key(4)
  plain = stability.hessian_diagonal(loss_fn, params, batches, key, 10)
  groups = stability.hessian_diagonal_groups(loss_fn, params, batches, key, 10, 4)
  assert groups.sizes_G.tolist() == [2, 3, 3, 2]  # Bounds round(g * 10 / 4): 0, 2, 5, 8, 10.
  chex.assert_trees_all_close(groups.mean(), plain, rtol=1e-5, atol=1e-7)


def test_exact_estimator_has_reliability_one_and_no_error():
  """With a diagonal Hessian every probe gives z_i (H z)_i = H_ii exactly."""
  loss_fn, params, a = quadratic_problem(0.0)
  groups = stability.hessian_diagonal_groups(loss_fn, params, [None], jax.random.key(0), 16, 8)
  s = stability.summary_with_errors(groups)
  assert s["reliability"] == pytest.approx(1.0)
  assert s["std"] == pytest.approx(np.diag(a).std(), rel=1e-5)
  assert s["std_signal"] == pytest.approx(np.diag(a).std(), rel=1e-4)
  assert all(v == pytest.approx(0.0, abs=1e-5) for v in s["se"].values())


def test_jackknife_error_matches_the_estimators_spread_over_probe_draws():
  """The jackknife SE of the mean of the diagonal, from one estimate, against the std of that
  mean over 200 independent probe draws (the oracle); the noise-free std against the exact
  diagonal's std, and the reliability against its value from the oracle draws."""
  loss_fn, params, a = quadratic_problem(3.0)
  exact = np.diag(a)
  draw = lambda k: stability.hessian_diagonal_groups(loss_fn, params, [None],
                                                     jax.random.key(k), 32, 8)
  means = [float(np.mean(np.asarray(draw(k).mean()["Dense_0"]["kernel"]))) for k in range(200)]
  oracle_se = np.std(means)
  summaries = [stability.summary_with_errors(draw(1000 + k)) for k in range(20)]
  jackknife = np.mean([s["se"]["mean"] for s in summaries])
  assert 0.7 * oracle_se < jackknife < 1.3 * oracle_se
  assert np.mean([s["std_signal"] for s in summaries]) == pytest.approx(exact.std(), rel=0.15)
  # Oracle reliability: the correlation of two independent 16-probe estimates.
  kernel = lambda k: np.ravel(stability.hessian_diagonal(
      loss_fn, params, [None], jax.random.key(k), 16)["Dense_0"]["kernel"])
  halves = [np.corrcoef(kernel(k), kernel(k + 500))[0, 1] for k in range(20)]
  assert np.mean([s["reliability"] for s in summaries]) == pytest.approx(np.mean(halves),
                                                                         abs=0.1)
  assert 0.1 < np.mean(halves) < 0.95  # The probes are noisy enough for the test to bite.
