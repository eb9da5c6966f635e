"""Layerwise LMC: one layer moved from A to B, the rest at A; against direct evaluation."""

import functools

import jax
import numpy as np
import pytest

from lottery_jax import loss as loss_lib
from lottery_jax import stability
from lottery_jax import train as train_lib
from lottery_jax.errors import UserInputError
from lottery_jax.models import get_model

IMAGE_SHAPE = (8, 8, 1)
ALPHAS = [0.0, 0.25, 0.5, 1.0]


def tiny_data(n=40, seed=0):
  rng = np.random.default_rng(seed)
  return (rng.normal(size=(n, *IMAGE_SHAPE)).astype(np.float32),
          rng.integers(0, 3, n).astype(np.int32))


@functools.lru_cache(maxsize=2)
def two_solutions(norm="instance"):
  model = get_model("convnet", 3, width=4, depth=2, norm=norm)
  params_a, stats_a = train_lib.init_variables(model, jax.random.key(0), IMAGE_SHAPE)
  params_b, stats_b = train_lib.init_variables(model, jax.random.key(1), IMAGE_SHAPE)
  return model, params_a, params_b, stats_a, stats_b


def direct_loss(model, params, batch_stats=None):
  images, labels = tiny_data()
  return loss_lib.evaluate(loss_lib.make_eval_step(model), params, batch_stats or {}, images,
                           labels)["loss"]


def test_default_layers_pair_each_kernel_with_its_normalisation():
  _, params, _, _, _ = two_solutions()
  assert stability.layer_modules(params) == {"Conv_0": ("Conv_0", "GroupNorm_0"),
                                             "Conv_1": ("Conv_1", "GroupNorm_1"),
                                             "Dense_0": ("Dense_0",)}
  _, params, _, _, _ = two_solutions("batch")
  assert stability.layer_modules(params)["Conv_1"] == ("Conv_1", "BatchNorm_1")


def test_a_normalisation_module_with_two_candidate_kernels_is_refused():
  params = {"Conv_0": {"kernel": np.zeros((3, 3, 1, 4))}, "Dense_0": {"kernel": np.zeros((8, 4))},
            "LayerNorm_0": {"scale": np.zeros(4), "bias": np.zeros(4)}}
  with pytest.raises(UserInputError, match="LayerNorm_0 could belong to Conv_0 or Dense_0"):
    stability.layer_modules(params)


def test_barriers_are_zero_when_a_equals_b():
  model, params_a, _, _, _ = two_solutions()
  images, labels = tiny_data()
  metrics = stability.layerwise_path_metrics(model, params_a, params_a, ALPHAS, images, labels)
  assert metrics["loss_LxA"].shape == (3, 4)
  np.testing.assert_array_equal(metrics["loss_LxA"], metrics["loss_LxA"][0, 0])
  for per_layer in stability.layer_barriers(metrics).values():
    for b in per_layer.values():
      assert b["max_barrier"] == pytest.approx(0.0, abs=1e-12)
      assert b["midpoint_barrier"] == pytest.approx(0.0, abs=1e-12)


def test_a_layer_equal_in_a_and_b_keeps_the_whole_path_at_a():
  model, params_a, params_b, _, _ = two_solutions()
  images, labels = tiny_data()
  modules = ("Conv_1", "GroupNorm_1")
  params_b = stability.replace_layer(params_b, params_a, modules)  # B's Conv_1 is A's.
  metrics = stability.layerwise_path_metrics(model, params_a, params_b, ALPHAS, images, labels)
  row = metrics["layers_L"].index("Conv_1")
  np.testing.assert_array_equal(metrics["loss_LxA"][row], metrics["loss_LxA"][row, 0])
  assert metrics["loss_LxA"][row, 0] == pytest.approx(direct_loss(model, params_a), rel=1e-5)
  # The other layers do move (the test can fail).
  assert np.ptp(metrics["loss_LxA"][metrics["layers_L"].index("Conv_0")]) > 1e-4


def test_each_point_equals_evaluating_a_with_that_layer_moved():
  model, params_a, params_b, _, _ = two_solutions()
  images, labels = tiny_data()
  metrics = stability.layerwise_path_metrics(model, params_a, params_b, ALPHAS, images, labels,
                                             chunk_size=16)
  a_loss = direct_loss(model, params_a)
  for row, modules in enumerate(metrics["modules_L"]):
    hybrid = stability.replace_layer(params_a, params_b, modules)
    assert metrics["loss_LxA"][row, 0] == pytest.approx(a_loss, rel=1e-5)
    assert metrics["loss_LxA"][row, -1] == pytest.approx(direct_loss(model, hybrid), rel=1e-5)
    halfway = stability.interpolate(params_a, hybrid, 0.5)
    assert metrics["loss_LxA"][row, 2] == pytest.approx(direct_loss(model, halfway), rel=1e-5)
  barriers = stability.layer_barriers(metrics)
  assert list(barriers) == metrics["layers_L"]
  table = stability.layerwise_lmc.markdown_table(barriers)
  assert table.count("\n") == 5 and "| Conv_0 |" in table


def test_batchnorm_layer_endpoint_with_recomputed_statistics():
  model, params_a, params_b, stats_a, stats_b = two_solutions("batch")
  images, labels = tiny_data()
  bn_images, _ = tiny_data(16, seed=1)
  metrics = stability.layerwise_path_metrics(
      model, params_a, params_b, [0.0, 1.0], images, labels, layers=["Conv_1"],
      batch_stats_a=stats_a, batch_stats_b=stats_b, bn_images=bn_images, chunk_size=16)
  hybrid = stability.replace_layer(params_a, params_b, ("Conv_1", "BatchNorm_1"))
  for column, params in ((0, params_a), (1, hybrid)):
    stats = stability.recompute_batch_stats(model, params, stats_a, bn_images, chunk_size=16)
    assert metrics["loss_LxA"][0, column] == pytest.approx(direct_loss(model, params, stats),
                                                           rel=1e-5)


def test_batchnorm_without_bn_images_moves_the_layers_statistics_too():
  model, params_a, params_b, stats_a, _ = two_solutions("batch")
  images, labels = tiny_data()
  # Running statistics of each endpoint (initial ones are equal in A and B).
  bn_images, _ = tiny_data(16, seed=1)
  stats_a, stats_b = (stability.recompute_batch_stats(model, p, stats_a, bn_images,
                                                      chunk_size=16)
                      for p in (params_a, params_b))
  metrics = stability.layerwise_path_metrics(
      model, params_a, params_b, [0.0, 1.0], images, labels, layers=["Conv_1"],
      batch_stats_a=stats_a, batch_stats_b=stats_b)
  modules = ("Conv_1", "BatchNorm_1")
  hybrid = stability.replace_layer(params_a, params_b, modules)
  hybrid_stats = stability.replace_layer(stats_a, stats_b, modules)
  assert metrics["loss_LxA"][0, 1] == pytest.approx(
      direct_loss(model, hybrid, hybrid_stats), rel=1e-5)
  # The layer's statistics matter here (the test can fail).
  assert abs(direct_loss(model, hybrid, stats_a) - metrics["loss_LxA"][0, 1]) > 1e-4


@pytest.mark.parametrize("kwargs, message", [
    ({"alphas_A": [0.0, 0.5]}, "holding exactly 0 and 1"),
    ({"layers": ["Conv_9"]}, "unknown layer 'Conv_9'; valid choices: 'Conv_0'"),
    ({"layers": {"x": ["Conv_9"]}}, "no parameter under module 'Conv_9'"),
    ({"layers": {"x": ["Conv_0"], "y": ["Conv_0/kernel"]}}, "belongs to layers 'x' and 'y'"),
])
def test_bad_input_is_refused_in_one_line(kwargs, message):
  model, params_a, params_b, _, _ = two_solutions()
  images, labels = tiny_data()
  kwargs = {"alphas_A": ALPHAS, **kwargs}
  with pytest.raises(UserInputError, match=message):
    stability.layerwise_path_metrics(model, params_a, params_b, images=images, labels=labels,
                                     **kwargs)


def test_layer_barrier_figure_is_written(tmp_path):
  path = stability.plot_layerwise_barriers({"imp": {"Conv_0": 0.1, "Dense_0": 0.0},
                                            "distilled": {"Conv_0": 0.2, "Dense_0": 0.05}},
                                           str(tmp_path / "layers.png"))
  assert (tmp_path / "layers.png").stat().st_size > 0 and path.endswith("layers.png")
  with pytest.raises(UserInputError, match="no layer barriers"):
    stability.plot_layerwise_barriers({}, str(tmp_path / "none.png"))
