"""Masks and pruning: exact counts, monotone masks, deterministic ties, bad input."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
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
  assert masks.jaccard(a, b) == 1.0
  assert masks.jaccard(a, c) < 1.0
  assert masks.jaccard(pruning.prune(params, m0), pruning.prune(params, m0)) == 1.0


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
  with pytest.raises(UserInputError, match="valid choices: 'grasp', 'magnitude', 'random'"):
    pruning.prune(params, m, method="obd")
  with pytest.raises(UserInputError, match="snip pruning needs apply_fn"):
    pruning.prune(params, m, method="snip")
  with pytest.raises(UserInputError, match="needs a PRNG key"):
    pruning.prune(params, m, method="random")
  bad = dict(m, b={"kernel": jnp.ones((8, 7), bool)})
  with pytest.raises(UserInputError, match="b/kernel"):
    pruning.prune(params, bad)
  bad_bias = dict(m, a={"kernel": m["a"]["kernel"], "bias": jnp.zeros((), bool)})
  with pytest.raises(UserInputError, match="non-prunable"):
    masks.validate(bad_bias, params)


def test_jaccard_of_a_mask_with_itself_is_one():
  params = random_params()
  m = pruning.prune(params, masks.init_masks(params), 0.7)
  assert masks.jaccard(m, m) == 1.0


def small_mlp_problem():
  x = jax.random.normal(jax.random.key(0), (64, 6))
  y = (x[:, 0] + x[:, 1] > 0).astype(jnp.int32)
  k1, k2, k3 = jax.random.split(jax.random.key(1), 3)
  params = {"Dense_0": {"kernel": jax.random.normal(k1, (6, 16)) * 0.5, "bias": jnp.zeros(16)},
            "Dense_1": {"kernel": jax.random.normal(k2, (16, 16)) * 0.3, "bias": jnp.zeros(16)},
            "Dense_2": {"kernel": jax.random.normal(k3, (16, 2)) * 0.3, "bias": jnp.zeros(2)}}

  def loss_fn(p):
    h = jax.nn.relu(x @ p["Dense_0"]["kernel"] + p["Dense_0"]["bias"])
    h = jax.nn.relu(h @ p["Dense_1"]["kernel"] + p["Dense_1"]["bias"])
    logits = h @ p["Dense_2"]["kernel"] + p["Dense_2"]["bias"]
    return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

  return params, loss_fn


@pytest.mark.parametrize("make_tx", [
    lambda: optax.chain(optax.add_decayed_weights(1e-2), optax.sgd(0.1, momentum=0.9)),
    lambda: optax.adam(1e-2),
    lambda: optax.adamw(1e-2, weight_decay=0.1),
], ids=["sgd_momentum_l2", "adam", "adamw"])
def test_masked_optimizer_keeps_pruned_weights_exactly_zero(make_tx):
  chex.clear_trace_counter()
  params, loss_fn = small_mlp_problem()
  m = pruning.prune(params, masks.init_masks(params), 0.6)
  tx = masks.masked_optimizer(make_tx(), m)
  params = masks.apply_masks(params, m)
  start = params
  opt_state = tx.init(params)

  @jax.jit
  @chex.assert_max_traces(n=1)  # A second round with new masks must not retrace.
  def step(params, opt_state):
    grads = jax.grad(loss_fn)(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state

  for _ in range(50):
    params, opt_state = step(params, opt_state)
  for p, p0, k in zip(jax.tree.leaves(params), jax.tree.leaves(start), jax.tree.leaves(m)):
    p, p0, k = np.asarray(p), np.asarray(p0), np.broadcast_to(np.asarray(k), np.shape(p))
    assert np.all(p[~k] == 0.0), "a pruned weight moved"
    assert not np.array_equal(p[k], p0[k]), "kept weights did not train"
  # A second round: a new init with new masks reuses the compiled step (masks are state).
  m2 = pruning.prune(params, m, 0.5)
  params2 = masks.apply_masks(params, m2)
  params2, _ = step(params2, masks.masked_optimizer(make_tx(), m2).init(params2))
  for p, k in zip(jax.tree.leaves(params2), jax.tree.leaves(m2)):
    assert np.all(np.asarray(p)[~np.broadcast_to(np.asarray(k), np.shape(p))] == 0.0)


def test_dense_layers_predicate_leaves_the_named_layers_dense():
  params = random_params()  # a: (3, 3, 4, 8) = 288, b: (8, 8) = 64, c: (64, 5) = 320.
  keep_c = masks.dense_layers_predicate(params, ["c"])
  m = masks.init_masks(params, keep_c)
  assert np.shape(m["c"]["kernel"]) == () and bool(m["c"]["kernel"])
  assert masks.count(m) == (352, 352)
  m = pruning.prune(params, m, 0.25)  # 88 of the 352 prunable weights, none in c.
  assert masks.count(m) == (264, 352)
  assert masks.sparsity(m) == 88 / 352
  assert set(masks.layerwise_sparsity(m)) == {"a/kernel", "b/kernel"}
  applied = masks.apply_masks(params, m)
  np.testing.assert_array_equal(applied["c"]["kernel"], params["c"]["kernel"])
  before = {k: int(m[k]["kernel"].sum()) for k in "ab"}
  m = pruning.prune(params, m, 0.5, scope="layerwise")
  for k in "ab":
    assert int(m[k]["kernel"].sum()) == before[k] - pruning.num_to_prune(0.5, before[k])
  assert bool(m["c"]["kernel"])
  with pytest.raises(UserInputError, match="unknown layer 'd' in dense_layers; valid choices: "
                     "'a', 'b', 'c'"):
    masks.dense_layers_predicate(params, ["d"])


def tie_params():
  """Many exact ties: values from a small set, across leaves and within them."""
  k1, k2 = jax.random.split(jax.random.key(5))
  return {"a": {"kernel": jnp.round(jax.random.normal(k1, (3, 3, 2, 4))), "bias": jnp.ones(4)},
          "b": {"kernel": jnp.round(jax.random.normal(k2, (7, 5)) * 2) / 2}}


@pytest.mark.parametrize("scope", ["global", "layerwise"])
@pytest.mark.parametrize("method,make_params", [
    ("magnitude", random_params), ("magnitude", tie_params), ("random", tie_params)],
    ids=["magnitude-normal", "magnitude-ties", "random"])
def test_jitted_prune_equals_eager_prune(scope, method, make_params):
  params = make_params()
  jitted = jax.jit(pruning.prune, static_argnames=("fraction", "scope", "method"))
  eager_m = jitted_m = masks.init_masks(params)
  for r in range(3):
    key = jax.random.fold_in(jax.random.key(2), r)
    eager_m = pruning.prune(params, eager_m, 0.3, scope=scope, method=method, key=key)
    jitted_m = jitted(params, jitted_m, fraction=0.3, scope=scope, method=method, key=key)
    for e, j in zip(jax.tree.leaves(eager_m), jax.tree.leaves(jitted_m)):
      np.testing.assert_array_equal(np.asarray(e), np.asarray(j))
  kept, total = masks.count(eager_m)
  expected = total
  for _ in range(3):
    expected -= pruning.num_to_prune(0.3, expected)
  if scope == "global":
    assert kept == expected


def _numpy_prune_reference(params, m, fraction):
  """The earlier numpy implementation (global magnitude): stable argsort of kept scores."""
  idx = [i for i, x in enumerate(jax.tree.leaves(m)) if np.ndim(x)]
  leaves = jax.tree.leaves(m)
  scores = np.concatenate([np.abs(np.asarray(jax.tree.leaves(params)[i], np.float32)).ravel()
                           for i in idx])
  kept = np.concatenate([np.asarray(leaves[i]).ravel() for i in idx])
  candidates = np.flatnonzero(kept)
  order = np.argsort(scores[candidates], kind="stable")
  kept[candidates[order[:pruning.num_to_prune(fraction, len(candidates))]]] = False
  return kept


def test_prune_matches_the_numpy_reference_with_ties():
  params = tie_params()
  m = masks.init_masks(params)
  for _ in range(3):
    expected = _numpy_prune_reference(params, m, 0.3)
    m = pruning.prune(params, m, 0.3)
    got = np.concatenate([np.asarray(x).ravel() for x in jax.tree.leaves(m) if np.ndim(x)])
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("fraction", [0.1, 0.2, 0.3, 0.35, 1 / 3, 0.7, 0.999])
def test_traced_count_equals_numpy_rounding(fraction):
  r = np.concatenate([np.arange(0, 1 << 16),
                      np.random.default_rng(0).integers(0, 2**31 - 1, 1 << 16)]).astype(np.int32)
  got = jax.jit(lambda x: jax.vmap(lambda v: pruning._num_to_prune_traced(fraction, v))(x))(r)
  want = np.floor(fraction * r.astype(np.float64) + 0.5).astype(np.int64)
  np.testing.assert_array_equal(np.asarray(got, np.int64), want)


def test_mismatched_mask_trees_name_the_leaves_that_differ():
  params = {"Dense_0": {"kernel": jnp.ones((3, 2)), "bias": jnp.ones(2)}}
  renamed = {"Dense_1": {"kernel": jnp.ones((3, 2), bool), "bias": jnp.ones((), bool)}}
  # Same number of leaves, other names: the message names both sides, not two equal counts.
  with pytest.raises(UserInputError, match=r"masks have Dense_1/bias, Dense_1/kernel that "
                     r"params lack; params have Dense_0/bias, Dense_0/kernel that masks lack"):
    masks.apply_masks(params, renamed)
  missing = {"Dense_0": {"kernel": jnp.ones((3, 2), bool)}}
  with pytest.raises(UserInputError, match=r"params have Dense_0/bias that masks lack$"):
    pruning.prune(params, missing, 0.2)
  # A list of params masked by a tuple: the same leaf names, other containers (under jit).
  listed = {"Dense_0": [jnp.ones((3, 2)), jnp.ones(2)]}
  as_tuple = {"Dense_0": (jnp.ones((3, 2), bool), jnp.ones((), bool))}
  with pytest.raises(UserInputError, match="same leaf names, different containers or nesting"):
    jax.jit(masks.apply_masks)(listed, as_tuple)
