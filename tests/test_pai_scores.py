"""Pruning-at-initialization scores against hand computations on tiny networks, the score
registry, iterative rescoring, and SynFlow avoiding the layer collapse of magnitude pruning."""

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from lottery_jax import imp, masks, models, pruning, scores
from lottery_jax import train as train_lib

# One example x = (1, 2), label 0, through logits = x @ W with W chosen so both logits are 1:
# softmax p = (.5, .5), dL/dlogits = p - onehot = (-.5, .5), dL/dW_ij = x_i (p - y)_j.
W = jnp.array([[1.0, 0.5], [0.0, 0.25]])
X = jnp.array([[1.0, 2.0]])
Y = jnp.array([0])


def linear(params, x):
  return x @ params["Dense_0"]["kernel"]


def linear_params():
  return {"Dense_0": {"kernel": W}}


def test_snip_is_abs_gradient_times_weight():
  got = pruning.scores(linear_params(), "snip", apply_fn=linear, batch=(X, Y))
  # g = [[-.5, .5], [-1, 1]]; |g * W| = [[.5, .25], [0, .25]].
  np.testing.assert_allclose(got["Dense_0"]["kernel"], [[0.5, 0.25], [0.0, 0.25]], rtol=1e-6)


def test_grasp_is_weight_times_hessian_gradient_product():
  # H_(ij),(kl) = x_i x_k S_jl with S = diag(p) - p p^T = [[.25, -.25], [-.25, .25]], so
  # (H g)_ij = x_i (x . x) (S (p - y))_j = x_i * 5 * (-.25, .25)_j = [[-1.25, 1.25], [-2.5, 2.5]].
  pruning.register_score("grasp_t1", functools.partial(scores.grasp, temperature=1.0),
                         needs_data=True)
  got = pruning.scores(linear_params(), "grasp_t1", apply_fn=linear, batch=(X, Y))
  np.testing.assert_allclose(got["Dense_0"]["kernel"], [[-1.25, 0.625], [0.0, 0.625]],
                             rtol=1e-6)
  # The default temperature T = 200 leaves p at (.5, .5) here and divides g by T and H by
  # T^2: the same scores / 200^3.
  default = pruning.scores(linear_params(), "grasp", apply_fn=linear, batch=(X, Y))
  np.testing.assert_allclose(default["Dense_0"]["kernel"],
                             np.array([[-1.25, 0.625], [0.0, 0.625]]) / 200.0 ** 3, rtol=1e-5)
  # The lowest score goes first: one of four pruned removes W[0, 0] (-1.25).
  m = pruning.prune(linear_params(), masks.init_masks(linear_params()), 0.25, method="grasp_t1",
                    apply_fn=linear, batch=(X, Y))
  np.testing.assert_array_equal(m["Dense_0"]["kernel"], [[False, True], [True, True]])


class TwoLayer(nn.Module):
  @nn.compact
  def __call__(self, x):
    x = nn.relu(nn.Dense(2, use_bias=False)(x))
    return nn.Dense(1, use_bias=False)(x)


TWO_LAYER = {"Dense_0": {"kernel": jnp.array([[1.0, -2.0], [3.0, 0.5]])},
             "Dense_1": {"kernel": jnp.array([[-1.0], [2.0]])}}


def two_layer_apply(params, x):
  return TwoLayer().apply({"params": params}, x)


def test_synflow_is_flow_through_absolute_weights_on_ones():
  # Input (1, 1): h = |W1|^T 1 = (4, 2.5), R = h . |W2| = 4 + 5 = 9.
  # dR/d|W1_ij| = |W2_j| -> |W1_ij| |W2_j| = [[1, 4], [3, 1]]; dR/d|W2_j| = h_j -> [[4], [5]].
  batch = (jnp.zeros((3, 2)), jnp.zeros(3, jnp.int32))  # Only the shape is read.
  got = pruning.scores(TWO_LAYER, "synflow", apply_fn=two_layer_apply, batch=batch)
  np.testing.assert_allclose(got["Dense_0"]["kernel"], [[1.0, 4.0], [3.0, 1.0]], rtol=1e-6)
  np.testing.assert_allclose(got["Dense_1"]["kernel"], [[4.0], [5.0]], rtol=1e-6)
  # Scores are of the masked network: without W2_0 no flow passes hidden unit 0.
  m = masks.init_masks(TWO_LAYER)
  m["Dense_1"]["kernel"] = jnp.array([[False], [True]])
  got = pruning.scores(TWO_LAYER, "synflow", masks=m, apply_fn=two_layer_apply, batch=batch)
  np.testing.assert_allclose(got["Dense_0"]["kernel"], [[0.0, 4.0], [0.0, 1.0]], rtol=1e-6)
  np.testing.assert_allclose(got["Dense_1"]["kernel"], [[0.0], [5.0]], rtol=1e-6)


class DeepNarrow(nn.Module):
  @nn.compact
  def __call__(self, x):
    for _ in range(6):
      x = nn.relu(nn.Dense(4, use_bias=False)(x))
    return nn.Dense(2, use_bias=False)(x)


def deep_apply(params, x):
  return DeepNarrow().apply({"params": params}, x)


def test_iterative_synflow_avoids_the_layer_collapse_of_magnitude_pruning():
  params = DeepNarrow().init(jax.random.key(0), jnp.ones((1, 4)))["params"]
  # Layer 3 holds the smallest weights: global magnitude pruning removes it first.
  params["Dense_3"]["kernel"] = params["Dense_3"]["kernel"] * 1e-2
  ones = masks.init_masks(params)
  batch = (jnp.ones((1, 4)), jnp.zeros(1, jnp.int32))
  flow = lambda m: float(jnp.sum(deep_apply(jax.tree.map(jnp.abs, masks.apply_masks(params, m)),
                                            jnp.ones((1, 4)))))
  magnitude = pruning.prune(params, ones, 0.9)
  assert masks.count(magnitude) == (10, 104)  # 6 x 16 + 8 weights, 94 removed.
  assert masks.layerwise_sparsity(magnitude)["Dense_3/kernel"] == 1.0 and flow(magnitude) == 0.0
  synflow = pruning.prune(params, ones, 0.9, method="synflow", iterations=100,
                          apply_fn=deep_apply, batch=batch)
  assert masks.count(synflow) == (10, 104)
  assert max(masks.layerwise_sparsity(synflow).values()) < 1.0 and flow(synflow) > 0.0


def test_iterative_pruning_removes_the_one_shot_count_and_one_step_equals_one_shot():
  params = DeepNarrow().init(jax.random.key(1), jnp.ones((1, 4)))["params"]
  ones = masks.init_masks(params)
  batch = (jnp.ones((5, 4)), jnp.arange(5) % 2)
  kw = dict(apply_fn=deep_apply, batch=batch)
  for method in ("snip", "grasp", "synflow"):
    one = pruning.prune(params, ones, 0.5, method=method, **kw)
    assert masks.count(one) == (52, 104)
    assert masks.count(pruning.prune(params, ones, 0.5, method=method, iterations=7, **kw)) \
        == (52, 104)
  # magnitude scores do not depend on the mask: iterating changes nothing.
  a = pruning.prune(params, ones, 0.7)
  b = pruning.prune(params, ones, 0.7, iterations=5)
  assert all(bool(jnp.array_equal(x, y)) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def _convnet_theta0(norm, width=8):
  model = models.get_model("convnet", 10, width=width, depth=3, norm=norm)
  params, stats = train_lib.init_variables(model, jax.random.PRNGKey(0), (32, 32, 3))
  return model, params, stats


def test_synflow_scores_an_instance_norm_convnet_as_its_norm_free_twin():
  model, params, stats = _convnet_theta0("instance")
  twin, _, _ = _convnet_theta0("none")
  kernels = {k: v for k, v in params.items() if not k.startswith("GroupNorm_")}
  batch = (jnp.zeros((2, 32, 32, 3)), jnp.zeros((2,), jnp.int32))
  got = pruning.scores(params, "synflow", apply_fn=imp.synflow_apply_fn(model, stats),
                       batch=batch)
  want = pruning.scores(kernels, "synflow", apply_fn=imp.eval_apply_fn(twin, {}), batch=batch)
  for name in kernels:
    np.testing.assert_allclose(got[name]["kernel"], want[name]["kernel"], rtol=1e-6)
  assert all(float(jnp.max(got[name]["kernel"])) > 0 for name in kernels)
  # BatchNorm in evaluation mode is affine: such a model is scored as it is.
  bn_model, _, bn_stats = _convnet_theta0("batch")
  assert imp.synflow_apply_fn(bn_model, bn_stats).keywords["model"] is bn_model


def test_synflow_keeps_an_instance_norm_convnets_first_layer():
  # Scored through instance norm, the all-ones input's flow comes from the padded borders
  # alone and 89% pruning took 99.7% of Conv_0 (fig3, 2026-12-04).
  model, params, stats = _convnet_theta0("instance")
  ones = masks.init_masks(params, imp.prunable_predicate(params, ()))
  batch = (jnp.zeros((2, 32, 32, 3)), jnp.zeros((2,), jnp.int32))
  kept = pruning.prune(params, ones, 0.89, method="synflow", iterations=20,
                       apply_fn=imp.synflow_apply_fn(model, stats), batch=batch)
  layers = masks.layerwise_sparsity(kept)
  assert layers["Conv_0/kernel"] < 0.9, layers
  assert abs(masks.sparsity(kept) - 0.89) < 1e-3
