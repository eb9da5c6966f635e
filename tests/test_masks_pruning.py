"""Masks and pruning: exact counts, monotone masks, deterministic ties, bad input."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lottery_jax import masks, pruning
from lottery_jax.errors import UserInputError


def tiny_params():
  """Two 'layers' with kernels (prunable) and biases/scales (not prunable)."""
  return {
      "Conv_0": {"kernel": jnp.arange(1.0, 13.0).reshape(1, 2, 2, 3) - 6.5,
                 "bias": jnp.array([5.0, -5.0, 0.0])},
      "Dense_0": {"kernel": jnp.array([[0.1, -0.2], [0.3, -0.4], [0.5, 0.05]]),
                  "bias": jnp.zeros(2)},
      "GroupNorm_0": {"scale": jnp.array([0.01, 0.02, 0.03])},
  }


def test_init_masks_mirror_params_and_only_kernels_are_prunable():
  params = tiny_params()
  m = masks.init_masks(params)
  assert jax.tree.structure(m) == jax.tree.structure(params)
  assert all(x.dtype == bool and bool(x.all()) for x in jax.tree.leaves(m))
  prunable = masks.prunable_tree(params)
  assert prunable["Conv_0"]["kernel"] and prunable["Dense_0"]["kernel"]
  assert not prunable["Conv_0"]["bias"] and not prunable["GroupNorm_0"]["scale"]
  assert masks.count(m) == (18, 18)
  assert masks.sparsity(m) == 0.0


def test_global_magnitude_prunes_exactly_the_smallest():
  params = tiny_params()
  half = pruning.prune(params, masks.init_masks(params), fraction=0.25)
  assert masks.count(half) == (13, 18)  # 18 * 0.25 = 4.5 rounds up to 5.
  m = pruning.prune(params, masks.init_masks(params), fraction=0.39)  # 7.02 -> 7 weights.
  assert masks.count(m) == (11, 18)
  # The seven smallest |w|: 0.05 ... 0.4 in Dense_0, then three weights tie at 0.5 (Conv -0.5,
  # Conv 0.5, Dense 0.5): ties go to the earliest leaf (Conv_0), then row-major order.
  conv = np.asarray(params["Conv_0"]["kernel"]).ravel()
  conv_pruned = np.flatnonzero(~np.asarray(m["Conv_0"]["kernel"]).ravel())
  dense_pruned = np.sort(np.abs(np.asarray(params["Dense_0"]["kernel"]))[
      ~np.asarray(m["Dense_0"]["kernel"])])
  np.testing.assert_allclose(dense_pruned, [0.05, 0.1, 0.2, 0.3, 0.4])
  assert list(conv[conv_pruned]) == [-0.5, 0.5]
  # Non-prunable leaves are untouched even though the bias has the largest/smallest values.
  assert bool(m["Conv_0"]["bias"].all()) and bool(m["GroupNorm_0"]["scale"].all())
  # Threshold separation: every kept prunable weight is at least as large as every pruned one.
  kept, pruned = [], []
  for p, k in [(params["Conv_0"]["kernel"], m["Conv_0"]["kernel"]),
               (params["Dense_0"]["kernel"], m["Dense_0"]["kernel"])]:
    kept += list(np.abs(np.asarray(p))[np.asarray(k)])
    pruned += list(np.abs(np.asarray(p))[~np.asarray(k)])
  assert min(kept) >= max(pruned)


def random_params(seed=0):
  k1, k2, k3 = jax.random.split(jax.random.key(seed), 3)
  return {"a": {"kernel": jax.random.normal(k1, (3, 3, 4, 8)), "bias": jnp.ones(8)},
          "b": {"kernel": jax.random.normal(k2, (8, 8))},
          "c": {"kernel": jax.random.normal(k3, (64, 5)), "bias": jnp.ones(5)}}


@pytest.mark.parametrize("scope", ["global", "layerwise"])
@pytest.mark.parametrize("method", ["magnitude", "random"])
def test_repeated_pruning_is_exact_and_monotone(scope, method):
  params = random_params()
  m = masks.init_masks(params)
  total = masks.count(m)[1]
  for r in range(1, 9):
    previous = m
    m = pruning.prune(params, m, 0.2, scope=scope, method=method,
                      key=jax.random.fold_in(jax.random.key(1), r))
    for old, new in zip(jax.tree.leaves(previous), jax.tree.leaves(m)):
      assert not bool(jnp.any(new & ~old)), "a pruned weight came back"
    if scope == "global":
      remaining = masks.count(previous)[0]
      assert masks.count(m)[0] == remaining - pruning.num_to_prune(0.2, remaining)
    else:
      for name, (old, new) in {"a": (previous["a"]["kernel"], m["a"]["kernel"]),
                               "c": (previous["c"]["kernel"], m["c"]["kernel"])}.items():
        before = int(old.sum())
        assert int(new.sum()) == before - pruning.num_to_prune(0.2, before), name
    # 1 - 0.8^r within one weight per layer.
    assert abs(masks.sparsity(m) - (1 - 0.8**r)) * total <= 3


def test_pruning_is_deterministic_and_random_depends_on_the_key():
  params = random_params()
  m0 = masks.init_masks(params)
  a = pruning.prune(params, m0, 0.5, method="random", key=jax.random.key(3))
  b = pruning.prune(params, m0, 0.5, method="random", key=jax.random.key(3))
  c = pruning.prune(params, m0, 0.5, method="random", key=jax.random.key(4))
  assert masks.overlap(a, b) == 1.0
  assert masks.overlap(a, c) < 1.0
  assert masks.overlap(pruning.prune(params, m0), pruning.prune(params, m0)) == 1.0


def test_all_equal_weights_tie_break_by_position():
  params = {"l": {"kernel": jnp.ones((2, 5))}}
  m = pruning.prune(params, masks.init_masks(params), 0.3)
  assert np.asarray(m["l"]["kernel"]).ravel().tolist() == [False] * 3 + [True] * 7


def test_layerwise_sparsity_reports_each_kernel():
  params = random_params()
  m = pruning.prune(params, masks.init_masks(params), 0.5, scope="layerwise")
  assert masks.layerwise_sparsity(m) == {"a/kernel": 0.5, "b/kernel": 0.5, "c/kernel": 0.5}


def test_apply_masks_zeroes_exactly_the_pruned_weights():
  params = random_params()
  m = pruning.prune(params, masks.init_masks(params), 0.6)
  applied = masks.apply_masks(params, m)
  for p, k, a in zip(jax.tree.leaves(params), jax.tree.leaves(m), jax.tree.leaves(applied)):
    assert bool(jnp.all(jnp.where(k, a == p, a == 0)))


@pytest.mark.parametrize("fraction", [-0.1, 1.0, 1.5, "a lot", None])
def test_fraction_outside_unit_interval_is_refused(fraction):
  params = random_params()
  with pytest.raises(UserInputError, match=r"\[0, 1\)"):
    pruning.prune(params, masks.init_masks(params), fraction)


def test_bad_scope_method_key_and_mask_shape_are_refused():
  params = random_params()
  m = masks.init_masks(params)
  with pytest.raises(UserInputError, match="valid choices: 'global', 'layerwise'"):
    pruning.prune(params, m, scope="per-channel")
  with pytest.raises(UserInputError, match="valid choices: 'magnitude', 'random'"):
    pruning.prune(params, m, method="snip")
  with pytest.raises(UserInputError, match="needs a key"):
    pruning.prune(params, m, method="random")
  bad = dict(m, b={"kernel": jnp.ones((8, 7), bool)})
  with pytest.raises(UserInputError, match="b/kernel"):
    pruning.prune(params, bad)
  bad_bias = dict(m, a={"kernel": m["a"]["kernel"], "bias": jnp.zeros((), bool)})
  with pytest.raises(UserInputError, match="non-prunable"):
    masks.validate(bad_bias, params)


def test_overlap_of_a_mask_with_itself_is_one():
  params = random_params()
  m = pruning.prune(params, masks.init_masks(params), 0.7)
  assert masks.overlap(m, m) == 1.0
