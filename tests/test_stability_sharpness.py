"""Sharpness: Lanczos top eigenvalues and spectral density against the exact (masked) Hessian
of a tiny MLP, Lanczos on operators of known spectrum, the trace from the Hutchinson diagonal,
and the scale-normalised top eigenvalue."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from lottery_jax import masks as masks_lib
from lottery_jax import pruning, stability
from lottery_jax import train as train_lib
from lottery_jax.errors import UserInputError
from lottery_jax.models import get_model
from lottery_jax.stability import sharpness


@functools.lru_cache(maxsize=1)
def masked_mlp():
  """An MLP 8 -> 24 -> 3 (291 params), half its kernel weights pruned, two batches, and the
  exact Hessian (mean over the batches) restricted to the kept weights, float64."""
  model = get_model("mlp", 3, hidden=(24,))
  params, _ = train_lib.init_variables(model, jax.random.key(0), (2, 2, 2))
  masks = pruning.prune(params, masks_lib.init_masks(params), 0.5)
  rng = np.random.default_rng(0)
  batches = [{"image": jnp.asarray(rng.normal(size=(16, 2, 2, 2)), jnp.float32),
              "label": jnp.asarray(rng.integers(0, 3, 16), jnp.int32)} for _ in range(2)]
  loss_fn = stability.classification_loss(model)
  exact = np.mean(masked_hessians(loss_fn, params, masks, batches), axis=0)
  return loss_fn, params, masks, batches, exact


def masked_hessians(loss_fn, params, masks, batches) -> list[np.ndarray]:
  """The exact Hessian of each batch on the kept weights (symmetrised), float64."""
  flat, unravel = ravel_pytree(params)
  index = sharpness.kept_subspace(params, masks).index_K
  hessians = [np.asarray(jax.hessian(lambda f, b=b: loss_fn(unravel(f), b))(flat), np.float64)
              for b in batches]
  return [(h[np.ix_(index, index)] + h[np.ix_(index, index)].T) / 2 for h in hessians]


def test_kept_subspace_leaves_out_exactly_the_pruned_weights():
  _, params, masks, _, _ = masked_mlp()
  subspace = sharpness.kept_subspace(params, masks)
  kept, total = masks_lib.count(masks)
  num_biases = 24 + 3
  assert subspace.index_K.size == kept + num_biases and subspace.size == total + num_biases
  v = jnp.arange(1.0, subspace.index_K.size + 1)
  t = sharpness.to_tree(v, params, jnp.asarray(subspace.index_K))
  for leaf, keep in zip(jax.tree.leaves(t), jax.tree.leaves(masks)):
    assert np.all(np.asarray(leaf)[~np.broadcast_to(np.asarray(keep), leaf.shape)] == 0.0)
  np.testing.assert_array_equal(sharpness.to_vector(t, subspace.index_K), v)


def test_top_eigenvalues_match_eigvalsh_of_the_exact_masked_hessian():
  loss_fn, params, masks, batches, exact = masked_mlp()
  expected = np.linalg.eigvalsh(exact)[::-1][:3]
  top = stability.top_eigenvalues(loss_fn, params, batches, jax.random.key(0), k=3,
                                  num_steps=60, masks=masks)
  np.testing.assert_allclose(top.values_k, expected, rtol=1e-4)
  assert np.all(top.residuals_k < 1e-3 * expected[0])
  # The Ritz vectors are unit eigenvectors of the masked Hessian, zero on pruned weights.
  index = sharpness.kept_subspace(params, masks).index_K
  for i in range(3):
    vector = jax.tree.map(lambda x, i=i: x[i], top.vectors)
    flat = np.asarray(ravel_pytree(vector)[0], np.float64)
    assert np.all(np.delete(flat, index) == 0.0)
    v = flat[index]
    assert np.linalg.norm(v) == pytest.approx(1.0, abs=1e-5)
    assert np.linalg.norm(exact @ v - expected[i] * v) < 1e-3 * expected[0]


def test_masked_top_eigenvalue_is_not_the_dense_one():
  """The restriction bites: without masks the top eigenvalue is that of the full Hessian."""
  loss_fn, params, masks, batches, exact = masked_mlp()
  dense = stability.top_eigenvalues(loss_fn, params, batches, jax.random.key(0), num_steps=60)
  masked = stability.top_eigenvalues(loss_fn, params, batches, jax.random.key(0), num_steps=60,
                                     masks=masks)
  assert masked.values_k[0] == pytest.approx(np.linalg.eigvalsh(exact)[-1], rel=1e-4)
  assert dense.values_k[0] > masked.values_k[0] * (1 + 1e-3)


def known_spectrum(eigenvalues, seed=0):
  """A matvec v -> Q diag(eigenvalues) Q^T v with a random orthogonal Q."""
  n = len(eigenvalues)
  q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(n, n)))
  q_j, d_j = jnp.asarray(q, jnp.float32), jnp.asarray(eigenvalues, jnp.float32)
  return lambda v: q_j @ (d_j * (q_j.T @ v))


def test_lanczos_converges_to_a_known_spectrum():
  eigenvalues = np.concatenate([[50.0, 20.0, 10.0], np.linspace(-1.0, 1.0, 297)])
  top = stability.operator_top_eigenvalues(known_spectrum(eigenvalues), 300, jax.random.key(1),
                                           k=3, num_steps=40)
  np.testing.assert_allclose(top.values_k, [50.0, 20.0, 10.0], rtol=1e-5)
  assert np.all(top.residuals_k < 1e-3)


def test_full_lanczos_recovers_repeated_eigenvalues_through_restarts():
  """A diagonal with 4 distinct values: the Krylov space is 4-dimensional, so the run breaks
  down after 4 steps and must restart to find the other eigenvalues' copies."""
  eigenvalues = np.repeat([4.0, 3.0, 2.0, 1.0], 5)
  matvec = lambda v: jnp.asarray(eigenvalues, jnp.float32) * v
  top = stability.operator_top_eigenvalues(matvec, 20, jax.random.key(2), k=20, num_steps=50)
  assert top.num_steps == 20  # Capped at the dimension.
  np.testing.assert_allclose(top.values_k, eigenvalues, atol=1e-5)
  vectors = np.asarray(top.vectors, np.float64)
  np.testing.assert_allclose(vectors @ vectors.T, np.eye(20), atol=1e-4)


def test_lanczos_on_a_zero_operator_restarts_into_an_orthonormal_basis():
  """w = H v is exactly 0 at every step (e.g. a network whose units are all dead): each step
  restarts from a random direction, so the Ritz vectors stay an orthonormal set."""
  top = stability.operator_top_eigenvalues(jnp.zeros_like, 6, jax.random.key(2), k=6)
  vectors = np.asarray(top.vectors, np.float64)
  np.testing.assert_allclose(vectors @ vectors.T, np.eye(6), atol=1e-5)
  np.testing.assert_array_equal(top.values_k, 0.0)
  np.testing.assert_array_equal(top.residuals_k, 0.0)


def test_quadrature_of_a_diagonal_is_exact_for_a_rademacher_probe():
  """z^T D z = tr(D) for z = +-1: each probe's moments are exact, and with as many steps as
  dimensions the nodes are the eigenvalues, each of weight 1 / n."""
  eigenvalues = np.linspace(-2.0, 5.0, 30)
  matvec = lambda v: jnp.asarray(eigenvalues, jnp.float32) * v
  quadrature = stability.operator_spectral_density(matvec, 30, jax.random.key(3), num_probes=3,
                                                   num_steps=10)
  for p in range(3):
    nodes, weights = quadrature.nodes_PxM[p], quadrature.weights_PxM[p]
    assert weights.sum() == pytest.approx(1.0, abs=1e-5)
    assert weights @ nodes == pytest.approx(eigenvalues.mean(), abs=1e-4)
    assert weights @ nodes**2 == pytest.approx(np.mean(eigenvalues**2), rel=1e-4)
  full = stability.operator_spectral_density(matvec, 30, jax.random.key(3), num_steps=30)
  np.testing.assert_allclose(np.sort(full.nodes_PxM[0]), eigenvalues, atol=1e-4)
  np.testing.assert_allclose(full.weights_PxM[0], 1 / 30, atol=1e-5)


def test_density_moments_match_the_exact_spectrum():
  """Integral 1; mean tr(H)/K and second moment tr(H^2)/K (+ sigma^2 from the broadening)
  within 4 standard errors of the Rademacher probe noise, computed from the exact Hessian."""
  loss_fn, params, masks, batches, exact = masked_mlp()
  num_probes = 64
  quadrature = stability.spectral_density(loss_fn, params, batches, jax.random.key(4),
                                          num_probes=num_probes, num_steps=30, masks=masks)
  k = exact.shape[0]
  assert quadrature.dim == k
  grid, density = stability.density_on_grid(quadrature)
  sigma = sharpness.DENSITY_SIGMA_FRACTION * np.ptp(quadrature.nodes_PxM)
  integral = lambda f: np.trapezoid(f * density, grid)
  assert integral(1.0) == pytest.approx(1.0, abs=1e-4)

  def probe_se(matrix):  # Var(z^T A z) = 2 sum_{i != j} A_ij^2 for Rademacher z.
    off = np.sum(matrix**2) - np.sum(np.diag(matrix) ** 2)
    return np.sqrt(2 * off / num_probes) / k

  h2 = exact @ exact
  assert abs(integral(grid) - np.trace(exact) / k) < 4 * probe_se(exact)
  assert abs(integral(grid**2) - sigma**2 - np.trace(h2) / k) < 4 * probe_se(h2)
  # The tolerance is tight enough to bite: a mean off by half would fail it.
  assert 4 * probe_se(exact) < 0.5 * np.trace(exact) / k


def test_trace_is_the_sum_of_the_hutchinson_diagonal_within_its_error():
  loss_fn, params, masks, batches, exact = masked_mlp()
  groups = stability.hessian_diagonal_groups(loss_fn, params, batches, jax.random.key(5), 64, 8,
                                             masks=masks, probe_batch=64)
  trace = stability.hessian_trace(groups)
  assert abs(trace["trace"] - np.trace(exact)) < 4 * trace["se"]
  # The stated error is the estimator's: against the exact probe noise of the 64 x 2 probes.
  variances = [2 * (np.sum(h**2) - np.sum(np.diag(h) ** 2))
               for h in masked_hessians(loss_fn, params, masks, batches)]
  exact_se = np.sqrt(np.sum(variances) / 64) / len(batches)
  assert 0.4 * exact_se < trace["se"] < 2.5 * exact_se
  # Per layer: the sums of the diagonal over each module's leaves, adding up to the trace.
  assert sorted(trace["per_layer"]) == ["Dense_0", "Dense_1"]
  assert sum(t["trace"] for t in trace["per_layer"].values()) == pytest.approx(trace["trace"])
  diag = groups.mean()
  dense_1 = float(jnp.sum(diag["Dense_1"]["kernel"]) + jnp.sum(diag["Dense_1"]["bias"]))
  assert trace["per_layer"]["Dense_1"]["trace"] == pytest.approx(dense_1, rel=1e-5)


def test_trace_of_a_single_group_has_no_standard_error():
  loss_fn, params, masks, batches, _ = masked_mlp()
  groups = stability.hessian_diagonal_groups(loss_fn, params, batches, jax.random.key(5), 64,
                                             1, masks=masks, probe_batch=64)
  assert stability.hessian_trace(groups)["se"] is None


def test_scale_normalised_sharpness_is_invariant_for_a_scale_invariant_loss():
  """loss(w) = f(w / |w|): H(c w) = H(w) / c^2, so lambda_max changes 9-fold from w to 3 w and
  lambda_max |w|^2 does not."""
  a = np.random.default_rng(0).normal(size=(12, 12))
  a_j = jnp.asarray(a @ a.T, jnp.float32)

  def loss_fn(params, batch):
    del batch
    u = params["Dense_0"]["kernel"].ravel()
    u = u / jnp.linalg.norm(u)
    return 0.5 * u @ a_j @ u + jnp.sum(u[:3]) ** 3

  w = {"Dense_0": {"kernel": jnp.asarray(np.random.default_rng(1).normal(size=(3, 4)),
                                         jnp.float32)}}
  w3 = jax.tree.map(lambda x: 3 * x, w)
  top = lambda p: stability.top_eigenvalues(loss_fn, p, [None], jax.random.key(6)).values_k[0]
  assert top(w) == pytest.approx(9 * top(w3), rel=1e-3)
  assert stability.scale_normalised_sharpness(top(w3), w3) == pytest.approx(
      stability.scale_normalised_sharpness(top(w), w), rel=1e-3)


def test_scale_normalised_sharpness_counts_only_kept_weights():
  params = {"Dense_0": {"kernel": jnp.array([[3.0, 4.0]]), "bias": jnp.array([1.0])}}
  masks = {"Dense_0": {"kernel": jnp.array([[True, False]]), "bias": jnp.array(True)}}
  assert stability.scale_normalised_sharpness(2.0, params, masks) == pytest.approx(20.0)
  assert stability.scale_normalised_sharpness(2.0, params) == pytest.approx(52.0)


@pytest.mark.parametrize("call", [
    lambda f, p, b: stability.top_eigenvalues(f, p, b, 0),
    lambda f, p, b: stability.spectral_density(f, p, b, 0),
    lambda f, p, b: stability.operator_top_eigenvalues(lambda v: v, 4, 0),
])
def test_an_int_key_is_refused_in_one_line(call):
  loss_fn, params, _, batches, _ = masked_mlp()
  with pytest.raises(UserInputError, match="PRNG key such as jax.random.key"):
    call(loss_fn, params, batches)


@pytest.mark.parametrize("kwargs, message", [
    ({"k": 0}, "k must be between 1"),
    ({"k": 5, "num_steps": 4}, "k must be between 1"),
    ({"num_steps": 0}, "num_steps must be at least 1"),
])
def test_bad_sizes_are_refused_in_one_line(kwargs, message):
  loss_fn, params, _, batches, _ = masked_mlp()
  with pytest.raises(UserInputError, match=message):
    stability.top_eigenvalues(loss_fn, params, batches, jax.random.key(0), **kwargs)


def test_no_batch_and_nothing_kept_are_refused():
  loss_fn, params, masks, _, _ = masked_mlp()
  with pytest.raises(UserInputError, match="at least one batch"):
    stability.top_eigenvalues(loss_fn, params, [], jax.random.key(0))
  nothing = jax.tree.map(lambda m: jnp.zeros_like(m), masks)
  with pytest.raises(UserInputError, match="keep no weight"):
    stability.spectral_density(loss_fn, params, [None], jax.random.key(0), masks=nothing)


def test_spectral_density_figure_is_written(tmp_path):
  quadrature = stability.operator_spectral_density(lambda v: jnp.arange(10.0) * v, 10,
                                                   jax.random.key(0), num_steps=10)
  path = stability.plot_spectral_density(
      {"dense": stability.density_on_grid(quadrature)}, str(tmp_path / "density.png"))
  assert (tmp_path / "density.png").stat().st_size > 0 and path.endswith("density.png")
  with pytest.raises(UserInputError, match="no spectral density"):
    stability.plot_spectral_density({}, str(tmp_path / "none.png"))
