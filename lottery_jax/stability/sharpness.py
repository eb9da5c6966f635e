"""Sharpness of the loss as PyHessian (Yao et al. 2020) measures it: the top eigenvalues of the
Hessian, its trace, and its eigenvalue spectral density (Ghorbani et al. 2019).

The operator. With masks, the Hessian is restricted to the kept weights: P H P on the kept
subspace, where P zeroes pruned weights. A vector of that subspace is the kept coordinates of
`ravel_pytree(params)` (`KeptSubspace`); it is scattered back into a params tree (zero on pruned
weights), multiplied by the Hessian (forward-over-reverse, the gradient linearised once per
batch and call) and gathered again, so the pruned coordinates take no part at all. Its
dimension K counts every kept parameter, biases and normalisation parameters included (a mask
leaf that is 0-d True); a 0-d False mask leaf leaves that whole leaf out. With several batches
the operator is the mean of the batches' Hessians, as in `hessian_diagonal`.

Lanczos with full reorthogonalisation runs as a host loop over its steps, each step one jitted
Hessian-vector product per batch and one jitted update, all probes side by side (XLA:CPU runs
a convolution network's product about 11x slower inside a while loop; bench/lanczos_loop.py).
Eigenvalues of its tridiagonal matrix are the Ritz values (top
eigenvalues, with the residual ||H v - lambda v|| of each Ritz vector, measured by one more
Hessian-vector product), and its eigenvectors' first components squared are the Gauss
quadrature weights of stochastic Lanczos quadrature (the spectral density). The basis is a
(probes, num_steps, K) float array: memory grows as probes x num_steps x K.

The trace is not re-estimated: `hessian_trace` sums the Hutchinson diagonal of
`hessian.hessian_diagonal_groups` (per layer too), with its jackknife standard error over the
probe groups.
"""

import functools
from typing import Any, Callable, Iterable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from lottery_jax import masks as masks_lib
from lottery_jax import pruning
from lottery_jax import tree
from lottery_jax.errors import UserInputError
from lottery_jax.stability import hessian

Matvec = Callable[[jax.Array], jax.Array]  # (K,) -> (K,)
BatchedMatvec = Callable[[jax.Array], jax.Array]  # rows of (P, K) -> rows of (P, K)

DEFAULT_NUM_STEPS = 80  # Lanczos steps (Hessian-vector products) per probe; capped at K.
DENSITY_GRID_POINTS = 2000  # Grid points of `density_on_grid` when no grid is given.
DENSITY_SIGMA_FRACTION = 0.01  # Default broadening: this fraction of the nodes' range.


class KeptSubspace(NamedTuple):
  """The kept weights of a params tree as one flat vector.

  Attributes:
    index_K: int (K,) positions of the kept weights in `ravel_pytree(params)[0]`.
    size: length of `ravel_pytree(params)[0]` (kept and pruned).
  """
  index_K: np.ndarray
  size: int


def kept_subspace(params, masks=None) -> KeptSubspace:
  """The kept coordinates of `params` (all of them when masks is None). Masks: bool tree like
  params (a leaf of the param's shape, or 0-d for a whole leaf); they must be concrete."""
  flat, _ = ravel_pytree(params)
  if masks is None:
    keep = np.ones(flat.shape, bool)
  else:
    masks_lib.check_structure(masks, params)
    masks_lib.check_shapes(masks, params)
    masks_lib.check_bool(masks)
    full = jax.tree.map(lambda m, p: np.broadcast_to(np.asarray(m, bool), np.shape(p)),
                        masks, params)
    keep = np.asarray(ravel_pytree(full)[0], bool)
  index = np.flatnonzero(keep)
  if index.size == 0:
    raise UserInputError("the masks keep no weight; the Hessian on the kept weights is empty")
  return KeptSubspace(index, int(flat.size))


def to_tree(vector_K, params, index_K):
  """A tree like params holding vector_K on the kept coordinates and exactly 0 elsewhere."""
  flat, unravel = ravel_pytree(params)
  return unravel(jnp.zeros_like(flat).at[index_K].set(vector_K.astype(flat.dtype)))


def to_vector(params_like, index_K):
  """The kept coordinates (K,) of a tree like params."""
  return ravel_pytree(params_like)[0][index_K]


def _check_steps(num_steps: int, what: str) -> None:
  if int(num_steps) < 1:
    raise UserInputError(f"{what} must be at least 1, got {num_steps}")


def _check_batches(batches: Iterable[Any]) -> list:
  """The batches as a list; one line if there is none."""
  batches = list(batches)
  if not batches:
    raise UserInputError("the Hessian needs at least one batch")
  return batches


@functools.partial(jax.jit, static_argnames=("loss_fn",))
def _add_batch_hvp(total_PxK, params, batch, index_K, vectors_PxK, *, loss_fn):
  """total_PxK + (P H P v)_K for each row v of vectors_PxK, H the Hessian of loss_fn(., batch)
  at params. The gradient is linearised once (the forward and backward passes are shared by
  the rows); one row goes straight through, several through vmap."""
  hvp_fn = hessian.linearised_hvp(loss_fn, params, batch)
  apply = lambda v_K: to_vector(hvp_fn(to_tree(v_K, params, index_K)), index_K)
  if vectors_PxK.shape[0] == 1:
    return total_PxK + apply(vectors_PxK[0])[None]
  return total_PxK + jax.vmap(apply)(vectors_PxK)


def _hessian_matvec(loss_fn, params, batches: list, index_K) -> BatchedMatvec:
  """V_PxK -> rows (P H P v)_K, H the mean over batches of the Hessian of loss_fn at params:
  one jitted call per batch."""

  def matvec(vectors_PxK):
    total_PxK = jnp.zeros_like(vectors_PxK)
    for batch in batches:
      total_PxK = _add_batch_hvp(total_PxK, params, batch, index_K, vectors_PxK, loss_fn=loss_fn)
    return total_PxK / len(batches)

  return matvec


class Tridiagonal(NamedTuple):
  """P Lanczos runs side by side: T_p = V_p A V_p^T restricted to run p's Krylov space.

  Attributes:
    alphas_PxM: the diagonal of each T_p.
    betas_PxM: the off-diagonal of each T_p in its first M - 1 entries (the last is unused);
      0 where the run broke down (an invariant subspace was found) and restarted from a random
      direction orthogonal to its basis.
    basis_PxMxK: each run's orthonormal Lanczos vectors, one per row.
  """
  alphas_PxM: jax.Array
  betas_PxM: jax.Array
  basis_PxMxK: jax.Array


def _orthogonalise(w_K, basis_MxK):
  """w minus its projection on the rows of basis (twice: 'twice is enough')."""
  for _ in range(2):
    w_K = w_K - basis_MxK.T @ (basis_MxK @ w_K)
  return w_K


def _lanczos_update(basis, alphas, betas, scale, w, j, key):
  """One run's step j given w = H v_j: alpha_j, then v_{j+1} from w reorthogonalised against
  the basis (or, after a breakdown, from the random direction fold_in(key, j)). basis: (M + 1,
  K), rows after j zero; scale: the largest |H v| so far, the breakdown test's yardstick."""
  num_steps, dim = basis.shape[0] - 1, basis.shape[1]
  dtype = basis.dtype
  scale = jnp.maximum(scale, jnp.linalg.norm(w))
  alphas = alphas.at[j].set(basis[j] @ w)
  w = _orthogonalise(w, basis)
  beta = jnp.linalg.norm(w)
  # What is left of w after reorthogonalising a vector of the Krylov space is rounding.
  broke_down = beta <= jnp.finfo(dtype).eps * num_steps * scale
  restart = _orthogonalise(jax.random.normal(jax.random.fold_in(key, j), (dim,), dtype), basis)
  w = jnp.where(broke_down, restart, w)
  betas = betas.at[j].set(jnp.where(broke_down, 0.0, beta))
  # After the last step (j = M - 1) this writes the spare row M, which is dropped.
  basis = basis.at[j + 1].set(w / jnp.maximum(jnp.linalg.norm(w), jnp.finfo(dtype).tiny))
  return basis, alphas, betas, scale


_lanczos_steps = jax.jit(jax.vmap(_lanczos_update, in_axes=(0, 0, 0, 0, 0, None, 0)),
                         donate_argnums=(0, 1, 2))


def lanczos(matvec: BatchedMatvec, starts_PxK, num_steps: int, keys_P) -> Tridiagonal:
  """`num_steps` Lanczos steps with full reorthogonalisation, P runs side by side.

  The steps are a host loop of jitted calls (one matvec, one update), not an XLA while loop:
  on XLA:CPU a convolution network's Hessian-vector product runs about 11x slower inside one
  (bench/lanczos_loop.py).

  Args:
    matvec: a symmetric linear map applied to the rows of a (P, K) array.
    starts_PxK: each run's (nonzero) first direction; they are normalised.
    num_steps: M, at most K.
    keys_P: stacked jax PRNG keys, one per run, for the random restarts after a breakdown
      (step j of run p uses fold_in(keys_P[p], j)).
  """
  num_runs, dim = starts_PxK.shape
  dtype = starts_PxK.dtype
  first = starts_PxK / jnp.linalg.norm(starts_PxK, axis=1, keepdims=True)
  basis = jnp.zeros((num_runs, num_steps + 1, dim), dtype).at[:, 0].set(first)
  alphas = jnp.zeros((num_runs, num_steps), dtype)
  betas = jnp.zeros((num_runs, num_steps), dtype)
  scale = jnp.zeros((num_runs,), dtype)
  for j in range(num_steps):
    w = matvec(basis[:, j])
    basis, alphas, betas, scale = _lanczos_steps(basis, alphas, betas, scale, w,
                                                 jnp.int32(j), keys_P)
  return Tridiagonal(alphas, betas, basis[:, :num_steps])


@jax.jit
def _tridiagonal_eigh(alphas_M, betas_M):
  """(ascending eigenvalues theta_M, eigenvectors Y_MxM as columns) of one run's T."""
  off = betas_M[:-1]
  t = jnp.diag(alphas_M) + jnp.diag(off, 1) + jnp.diag(off, -1)
  return jnp.linalg.eigh(t)


def _top(matvec: BatchedMatvec, start_K, key, k: int, num_steps: int):
  """(values_k descending, Ritz vectors k x K, residuals_k) after num_steps Lanczos steps."""
  tri = lanczos(matvec, start_K[None], num_steps, key[None])
  theta, y = _tridiagonal_eigh(tri.alphas_PxM[0], tri.betas_PxM[0])
  values = theta[::-1][:k]
  vectors = (y[:, ::-1][:, :k]).T @ tri.basis_PxMxK[0]
  residuals = jnp.linalg.norm(matvec(vectors) - values[:, None] * vectors, axis=1)
  return values, vectors, residuals


def _quadrature(matvec: BatchedMatvec, key, dim: int, num_probes: int, num_steps: int):
  """(nodes_PxM, weights_PxM): Gauss quadrature of each Rademacher probe, all probes side by
  side; probe p's start is drawn from fold_in(key, p), its restarts from
  fold_in(fold_in(key, p), 1)."""
  probe_keys = jax.vmap(lambda p: jax.random.fold_in(key, p))(jnp.arange(num_probes))
  starts = jax.vmap(lambda k: jax.random.rademacher(k, (dim,), jnp.float32))(probe_keys)
  restart_keys = jax.vmap(lambda k: jax.random.fold_in(k, 1))(probe_keys)
  tri = lanczos(matvec, starts, num_steps, restart_keys)
  theta, y = jax.vmap(_tridiagonal_eigh)(tri.alphas_PxM, tri.betas_PxM)
  return theta, jnp.square(y[:, 0])


class Eigenpairs(NamedTuple):
  """Top eigenvalues from Lanczos.

  Attributes:
    values_k: float64 (k,) the k largest (algebraic) eigenvalues, descending.
    residuals_k: float64 (k,) ||H v - lambda v|| of each unit Ritz vector v: how far each value
      is from converged (an eigenvalue of H lies within it of the value).
    vectors: the unit Ritz vectors, leading axis k: a tree like params (zero on pruned
      weights) from `top_eigenvalues`, an array (k, K) from `operator_top_eigenvalues`.
    num_steps: Lanczos steps taken (Hessian-vector products, besides the k for residuals).
  """
  values_k: np.ndarray
  residuals_k: np.ndarray
  vectors: Any
  num_steps: int


class Quadrature(NamedTuple):
  """Stochastic Lanczos quadrature: per probe p, nodes theta_pi and weights tau_pi with
  sum_i tau_pi f(theta_pi) ~ z_p^T f(H) z_p / |z_p|^2 (exact for polynomials f of degree
  < 2M); averaged over probes, an estimate of tr f(H) / K.

  Attributes:
    nodes_PxM: float64 Ritz values of each probe's run.
    weights_PxM: float64 their weights; each row sums to 1.
    dim: K, the dimension of the operator.
  """
  nodes_PxM: np.ndarray
  weights_PxM: np.ndarray
  dim: int


def _steps(num_steps: int | None, dim: int) -> int:
  steps = DEFAULT_NUM_STEPS if num_steps is None else int(num_steps)
  _check_steps(steps, "num_steps")
  return min(steps, dim)


def _check_k(k: int, steps: int) -> int:
  if not 1 <= int(k) <= steps:
    raise UserInputError(f"k must be between 1 and the number of Lanczos steps ({steps}), "
                         f"got {k}")
  return int(k)


def operator_top_eigenvalues(matvec: Matvec, dim: int, key, k: int = 1,
                             num_steps: int | None = None) -> Eigenpairs:
  """The k largest eigenvalues of a symmetric operator given as a traceable matvec (K,) ->
  (K,) (jitted and vmapped here), from a standard normal start drawn from `key`. num_steps:
  Lanczos steps, None: DEFAULT_NUM_STEPS; capped at dim (then exact)."""
  pruning.check_key(key, "operator_top_eigenvalues")
  steps = _steps(num_steps, int(dim))
  k = _check_k(k, steps)
  start_key, restart_key = jax.random.split(key)
  start = jax.random.normal(start_key, (int(dim),), jnp.float32)
  values, vectors, residuals = _top(jax.jit(jax.vmap(matvec)), start, restart_key, k, steps)
  return Eigenpairs(np.asarray(values, np.float64), np.asarray(residuals, np.float64),
                    vectors, steps)


def operator_spectral_density(matvec: Matvec, dim: int, key, num_probes: int = 1,
                              num_steps: int | None = None) -> Quadrature:
  """Stochastic Lanczos quadrature of a symmetric operator (see `spectral_density`)."""
  pruning.check_key(key, "operator_spectral_density")
  _check_steps(num_probes, "num_probes")
  steps = _steps(num_steps, int(dim))
  nodes, weights = _quadrature(jax.jit(jax.vmap(matvec)), key, int(dim), int(num_probes),
                               steps)
  return Quadrature(np.asarray(nodes, np.float64), np.asarray(weights, np.float64), int(dim))


def top_eigenvalues(loss_fn: hessian.LossFn, params, batches: Iterable[Any], key, k: int = 1,
                    num_steps: int | None = None, masks=None) -> Eigenpairs:
  """The k largest eigenvalues of the Hessian of loss_fn on the kept weights, by Lanczos.

  Largest algebraic, as PyHessian's top eigenvalues at a minimum (where the extreme eigenvalues
  are positive); a saddle's most negative eigenvalue is not among them.

  Args:
    loss_fn: (params, batch) -> scalar loss, e.g. `hessian.classification_loss(model)`;
      reused across calls (a static argument of the jitted call).
    params: where the Hessian is taken.
    batches: the Hessian is the mean of theirs; one jitted call per batch and product (equal
      shapes share one compilation).
    key: a jax PRNG key; the start vector (standard normal on the kept weights) is drawn from
      it.
    k: how many eigenvalues.
    num_steps: Lanczos steps (Hessian-vector products over all batches); None:
      DEFAULT_NUM_STEPS. Capped at K, where the values are exact up to rounding.
    masks: bool tree like params, True where a weight is kept (see `kept_subspace`); None: all.

  Returns:
    Eigenpairs; check residuals_k before trusting a value (large ones want more steps).
  """
  pruning.check_key(key, "top_eigenvalues")
  subspace = kept_subspace(params, masks)
  steps = _steps(num_steps, subspace.index_K.size)
  k = _check_k(k, steps)
  index_K = jnp.asarray(subspace.index_K)
  matvec = _hessian_matvec(loss_fn, params, _check_batches(batches), index_K)
  start_key, restart_key = jax.random.split(key)
  start = jax.random.normal(start_key, index_K.shape, jnp.float32)
  values, vectors, residuals = _top(matvec, start, restart_key, k, steps)
  vectors = jax.vmap(lambda v: to_tree(v, params, index_K))(vectors)
  return Eigenpairs(np.asarray(values, np.float64), np.asarray(residuals, np.float64), vectors,
                    steps)


def spectral_density(loss_fn: hessian.LossFn, params, batches: Iterable[Any], key,
                     num_probes: int = 1, num_steps: int | None = None,
                     masks=None) -> Quadrature:
  """Stochastic Lanczos quadrature of the Hessian on the kept weights (Ghorbani et al. 2019,
  PyHessian's `density`): one Lanczos run per Rademacher probe, the probes side by side (vmapped).

  Args as `top_eigenvalues`; probe p (its start vector and restarts) is drawn from
  fold_in(key, p), so n probes are the first n of n + 1. PyHessian uses 1 probe of 100 steps;
  the quadrature's moments of degree < 2 num_steps are exact for each probe, so only probe
  noise remains in them (mean: tr(H)/K, second moment: tr(H^2)/K).

  Returns:
    Quadrature; `density_on_grid` turns it into a curve.
  """
  pruning.check_key(key, "spectral_density")
  _check_steps(num_probes, "num_probes")
  subspace = kept_subspace(params, masks)
  steps = _steps(num_steps, subspace.index_K.size)
  index_K = jnp.asarray(subspace.index_K)
  matvec = _hessian_matvec(loss_fn, params, _check_batches(batches), index_K)
  nodes, weights = _quadrature(matvec, key, index_K.shape[0], int(num_probes), steps)
  return Quadrature(np.asarray(nodes, np.float64), np.asarray(weights, np.float64),
                    int(subspace.index_K.size))


def density_on_grid(quadrature: Quadrature, grid_G=None, sigma: float | None = None,
                    num_points: int = DENSITY_GRID_POINTS) -> tuple[np.ndarray, np.ndarray]:
  """The Gaussian-broadened spectral density, phi(t) = mean_p sum_i tau_pi N(t; theta_pi,
  sigma^2), on a grid.

  Its integral is 1 (over a grid that covers the nodes by a few sigma), its mean the nodes'
  mean (~ tr(H)/K), its second moment the nodes' second moment (~ tr(H^2)/K) plus sigma^2.

  Args:
    quadrature: from `spectral_density`.
    grid_G: where to evaluate; None: num_points evenly spaced from the smallest node - 5 sigma
      to the largest + 5 sigma.
    sigma: the broadening; None: DENSITY_SIGMA_FRACTION of the nodes' range (1 if they are all
      equal).

  Returns:
    (grid_G, density_G), float64.
  """
  nodes, weights = quadrature.nodes_PxM.ravel(), quadrature.weights_PxM.ravel()
  span = float(nodes.max() - nodes.min())
  if sigma is None:
    sigma = DENSITY_SIGMA_FRACTION * span if span > 0 else 1.0
  if not sigma > 0:
    raise UserInputError(f"sigma must be positive, got {sigma}")
  if grid_G is None:
    grid_G = np.linspace(nodes.min() - 5 * sigma, nodes.max() + 5 * sigma, int(num_points))
  grid_G = np.asarray(grid_G, np.float64)
  gauss = np.exp(-0.5 * ((grid_G[:, None] - nodes[None, :]) / sigma) ** 2)
  density = gauss @ weights / (sigma * np.sqrt(2 * np.pi) * quadrature.nodes_PxM.shape[0])
  return grid_G, density


def _jackknife_se(values_G: np.ndarray, sizes_G: np.ndarray) -> float | None:
  """Jackknife standard error (leave one probe group out) of the size-weighted mean of
  values_G over groups; None for fewer than 2 groups."""
  num_groups = len(sizes_G)
  if num_groups < 2:
    return None
  n = sizes_G.sum()
  full = sizes_G @ values_G / n
  loo = (n * full - sizes_G * values_G) / (n - sizes_G)
  return float(np.sqrt((num_groups - 1) / num_groups * np.sum((loo - loo.mean()) ** 2)))


def _layer_name(path) -> str:
  parts = masks_lib.path_name(path).split("/")
  return "/".join(parts[:-1]) or parts[0]


def hessian_trace(groups: hessian.ProbeGroups) -> dict:
  """tr(P H P): the sum of the Hutchinson diagonal of `hessian_diagonal_groups` (with masks
  there, the diagonal is 0 on pruned weights, so this is the trace on the kept weights).

  Returns:
    {'trace', 'se', 'num_groups', 'per_layer': {module path ('Conv_0',
    'BasicBlock_1/BatchNorm_0', ...): {'trace', 'se'}}}: every parameter counts, biases and
    normalisation parameters included; the per-layer traces add up to 'trace'. 'se' is the
    jackknife standard error over the probe groups (None with one group); the trace is
    linear in the probes, so it is the ordinary standard error of a mean.
  """
  sizes = np.asarray(groups.sizes_G, np.float64)
  per_layer_G: dict[str, np.ndarray] = {}
  for path, leaf_G in jax.tree_util.tree_leaves_with_path(groups.diag_G):
    leaf_G = np.asarray(leaf_G, np.float64)
    layer = _layer_name(path)
    sums = leaf_G.reshape(leaf_G.shape[0], -1).sum(axis=1)
    per_layer_G[layer] = per_layer_G.get(layer, 0.0) + sums
  total_G = sum(per_layer_G.values())
  mean = lambda v: float(sizes @ v / sizes.sum())
  return {"trace": mean(total_G), "se": _jackknife_se(total_G, sizes),
          "num_groups": len(sizes),
          "per_layer": {name: {"trace": mean(v), "se": _jackknife_se(v, sizes)}
                        for name, v in per_layer_G.items()}}


def kept_norm_squared(params, masks=None) -> float:
  """||P theta||^2: the squared norm of the kept weights (the operator's coordinates)."""
  kept = params if masks is None else masks_lib.apply_masks(params, masks)
  return float(tree.dot(kept, kept))


def scale_normalised_sharpness(lambda_max: float, params, masks=None) -> float:
  """lambda_max * ||P theta||^2, the top eigenvalue in units of the kept weights' own scale.

  Why this one: 2 x the loss increase per squared *relative* step, since along the top
  eigenvector u, L(theta + eps |theta| u) - L(theta) ~ eps^2 (lambda_max |theta|^2) / 2; a
  network whose kept weights are c times larger has, for the same function, roughly 1 / c^2
  the curvature per absolute step. For a scale-invariant loss (every weight in the operator
  feeding a normalisation layer, L(c theta) = L(theta)) H(c theta) = H(theta) / c^2 and the
  measure is exactly invariant; otherwise (biases, a final dense layer, ReLU rescalings
  between layers) it corrects the overall weight norm, which differs between dense and sparse
  networks, but not every reparametrisation. lambda_max and the norm must use the same masks.
  """
  return float(lambda_max) * kept_norm_squared(params, masks)
