"""Loss landscape: the plane's axes, grid values at the two solutions, the plot."""

import jax
import numpy as np
import pytest

from lottery_jax import masks as masks_lib
from lottery_jax import loss as loss_lib
from lottery_jax import pruning, stability, tree
from lottery_jax import train as train_lib
from lottery_jax.models import get_model

IMAGE_SHAPE = (8, 8, 1)


def tiny_data(n=40, seed=0):
  rng = np.random.default_rng(seed)
  images = rng.normal(size=(n, *IMAGE_SHAPE)).astype(np.float32)
  return images, rng.integers(0, 3, n).astype(np.int32)


def masked_solutions(norm="instance"):
  """Two inits of a tiny ConvNet under one ~50%-sparse mask (as two trainings would be)."""
  model = get_model("convnet", 3, width=4, depth=2, norm=norm)
  params_a, stats = train_lib.init_variables(model, jax.random.key(0), IMAGE_SHAPE)
  params_b, _ = train_lib.init_variables(model, jax.random.key(1), IMAGE_SHAPE)
  m = masks_lib.init_masks(params_a)
  for _ in range(3):
    m = pruning.prune(params_a, m, 0.2)
  return (model, masks_lib.apply_masks(params_a, m), masks_lib.apply_masks(params_b, m), m,
          stats)


@pytest.mark.parametrize("filter_normalize", [False, True])
def test_plane_directions_are_orthogonal_equal_length_and_inside_the_mask(filter_normalize):
  _, params_a, params_b, m, _ = masked_solutions()
  u, v = stability.plane_directions(params_a, params_b, m, jax.random.key(2),
                                    filter_normalize=filter_normalize)
  assert jax.tree.structure(u) == jax.tree.structure(v) == jax.tree.structure(params_a)
  nu, nv = float(tree.norm(u)), float(tree.norm(v))
  assert abs(float(tree.dot(u, v))) < 1e-5 * nu * nv
  assert nv == pytest.approx(nu, rel=1e-5)
  prunable = masks_lib.prunable_tree(params_a)
  for path_u, v_leaf, m_leaf, p in zip(jax.tree_util.tree_leaves_with_path(u),
                                       jax.tree.leaves(v), jax.tree.leaves(m),
                                       jax.tree.leaves(prunable)):
    u_leaf, m_leaf, v_leaf = np.asarray(path_u[1]), np.asarray(m_leaf), np.asarray(v_leaf)
    assert np.all(v_leaf[~m_leaf] == 0.0) and np.all(u_leaf[~m_leaf] == 0.0)
    if filter_normalize and not p:
      assert np.all(v_leaf == 0.0), "filter-normalised v must be zero on biases and norms"
    if p:
      assert np.any(v_leaf[m_leaf] != 0.0)


def test_grid_values_at_the_solutions_equal_their_losses_and_plot_is_written(tmp_path):
  model, params_a, params_b, m, _ = masked_solutions()
  images, labels = tiny_data()
  u, v = stability.plane_directions(params_a, params_b, m, jax.random.key(2))
  coords_a, coords_b = stability.default_coords(5)  # [-0.5, 0, 0.5, 1, 1.5], [-1, ..., 1].
  assert coords_a[1] == 0.0 and coords_a[3] == 1.0 and coords_b[2] == 0.0
  losses = stability.grid_losses(model, params_a, u, v, coords_a, coords_b, images, labels,
                                 chunk_size=16)
  assert losses.shape == (5, 5) and np.all(np.isfinite(losses))
  eval_step = loss_lib.make_eval_step(model)
  loss_a = loss_lib.evaluate(eval_step, params_a, {}, images, labels)["loss"]
  loss_b = loss_lib.evaluate(eval_step, params_b, {}, images, labels)["loss"]
  assert losses[1, 2] == pytest.approx(loss_a, rel=1e-5)
  assert losses[3, 2] == pytest.approx(loss_b, rel=1e-4)  # origin + u: rounding only.
  blocked = stability.grid_losses(model, params_a, u, v, coords_a, coords_b, images, labels,
                                  chunk_size=16, point_batch=4)
  np.testing.assert_allclose(blocked, losses, rtol=1e-5)
  # Non-square grids keep [a, b] indexing.
  assert stability.grid_losses(model, params_a, u, v, coords_a[:3], coords_b[:2], images,
                               labels).shape == (3, 2)

  path = tmp_path / "landscape.png"
  assert stability.plot_landscape(losses, coords_a, coords_b, str(path), "tiny") == str(path)
  assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_default_grid_is_100_by_100_over_the_paper_ranges():
  coords_a, coords_b = stability.default_coords()
  assert coords_a.shape == coords_b.shape == (100,)
  assert (coords_a[0], coords_a[-1], coords_b[0], coords_b[-1]) == (-0.5, 1.5, -1.0, 1.0)


def test_batchnorm_grid_recomputes_statistics_at_each_point():
  model, params_a, params_b, m, stats = masked_solutions("batch")
  images, labels = tiny_data()
  bn_images, _ = tiny_data(16, seed=1)
  u, v = stability.plane_directions(params_a, params_b, m, jax.random.key(2))
  losses = stability.grid_losses(model, params_a, u, v, [0.0, 1.0], [0.0, 0.5], images, labels,
                                 batch_stats=stats, bn_images=bn_images, chunk_size=16)
  eval_step = loss_lib.make_eval_step(model)
  for i, params in enumerate((params_a, params_b)):
    recomputed = stability.recompute_batch_stats(model, params, stats, bn_images, chunk_size=16)
    direct = loss_lib.evaluate(eval_step, params, recomputed, images, labels)["loss"]
    assert losses[i, 0] == pytest.approx(direct, rel=1e-4)
