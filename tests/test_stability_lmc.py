"""Linear mode connectivity: exact endpoints, path metrics against direct evaluation,
barriers, and BatchNorm statistics recomputed along the path."""

import os
import pathlib
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lottery_jax import loss as loss_lib
from lottery_jax import stability
from lottery_jax import train as train_lib
from lottery_jax.errors import UserInputError
from lottery_jax.models import get_model

IMAGE_SHAPE = (8, 8, 1)


def tiny_data(n=50, seed=0):
  rng = np.random.default_rng(seed)
  images = rng.normal(size=(n, *IMAGE_SHAPE)).astype(np.float32)
  labels = rng.integers(0, 3, n).astype(np.int32)
  return images, labels


def two_solutions(norm="instance"):
  model = get_model("convnet", 3, width=4, depth=2, norm=norm)
  params_a, stats_a = train_lib.init_variables(model, jax.random.key(0), IMAGE_SHAPE)
  params_b, stats_b = train_lib.init_variables(model, jax.random.key(1), IMAGE_SHAPE)
  return model, params_a, params_b, stats_a, stats_b


def test_default_alphas_run_exactly_from_0_to_1_through_half():
  alphas = stability.default_alphas()
  assert alphas.shape == (31,) and alphas[0] == 0.0 and alphas[-1] == 1.0 and alphas[15] == 0.5


@pytest.mark.parametrize("alpha_type", [float, jnp.float32])
def test_interpolate_is_exact_at_the_endpoints(alpha_type):
  _, params_a, params_b, _, _ = two_solutions()
  at_0 = stability.interpolate(params_a, params_b, alpha_type(0.0))
  at_1 = stability.interpolate(params_a, params_b, alpha_type(1.0))
  for a, b, x0, x1 in zip(*map(jax.tree.leaves, (params_a, params_b, at_0, at_1))):
    assert np.array_equal(np.asarray(x0), np.asarray(a))
    assert np.array_equal(np.asarray(x1), np.asarray(b))


def test_path_metrics_endpoints_equal_direct_evaluation():
  model, params_a, params_b, _, _ = two_solutions()
  images, labels = tiny_data()
  eval_step = loss_lib.make_eval_step(model)
  direct_a = loss_lib.evaluate(eval_step, params_a, {}, images, labels)
  direct_b = loss_lib.evaluate(eval_step, params_b, {}, images, labels)
  # 50 examples in chunks of 16: the last chunk is padded with weight 0.
  metrics = stability.path_metrics(model, params_a, params_b, [0.0, 0.5, 1.0], images, labels,
                                   chunk_size=16)
  assert metrics["loss_A"].shape == metrics["accuracy_A"].shape == (3,)
  np.testing.assert_allclose(metrics["loss_A"][[0, 2]], [direct_a["loss"], direct_b["loss"]],
                             rtol=1e-5)
  np.testing.assert_allclose(metrics["accuracy_A"][[0, 2]],
                             [direct_a["accuracy"], direct_b["accuracy"]])
  # Vmapped blocks of alphas (with a remainder block) compute the same numbers.
  blocked = stability.path_metrics(model, params_a, params_b, [0.0, 0.5, 1.0], images, labels,
                                   chunk_size=16, alpha_batch=2)
  np.testing.assert_allclose(blocked["loss_A"], metrics["loss_A"], rtol=1e-5)


def test_endpoint_distance_against_numpy():
  _, params_a, params_b, _, _ = two_solutions()
  flat = lambda p: np.concatenate([np.ravel(np.asarray(x, np.float64))
                                   for x in jax.tree.leaves(p)])
  a, b = flat(params_a), flat(params_b)
  got = stability.endpoint_distance(params_a, params_b)
  assert got["l2"] == pytest.approx(np.linalg.norm(b - a), rel=1e-5)
  assert got["relative"] == pytest.approx(np.linalg.norm(b - a) / np.linalg.norm(a), rel=1e-5)
  assert stability.endpoint_distance(params_a, params_a) == {"l2": 0.0, "relative": 0.0}


def test_lmc_stage_refuses_a_pair_that_is_one_network_twice(tmp_path):
  """Two identical networks have barrier 0 by construction: the stage stops instead of
  writing lmc.json."""
  from types import SimpleNamespace

  from lottery_jax.runners import analyses as analyses_runner
  _, params_a, _, _, _ = two_solutions()
  state = SimpleNamespace(params=params_a, batch_stats={})
  rep = SimpleNamespace(trained=lambda producer, r, second=False: ({}, state),
                        round_dir=lambda producer, r: str(tmp_path))
  st = SimpleNamespace(num_alphas=5)
  images, labels = tiny_data()
  sample = analyses_runner.AnalysisSample(images, labels, np.arange(len(labels)), 3)
  with pytest.raises(RuntimeError, match="identical"):
    analyses_runner.lmc_stage(rep, st, "imp", 2, sample)
  assert not (tmp_path / "lmc.json").exists()


def test_barrier_of_identical_models_is_zero():
  model, params_a, _, _, _ = two_solutions()
  images, labels = tiny_data()
  metrics = stability.path_metrics(model, params_a, params_a, stability.default_alphas(7),
                                   images, labels)
  for b in stability.path_barriers(metrics).values():
    assert abs(b["max_barrier"]) < 1e-6 and abs(b["midpoint_barrier"]) < 1e-6


def test_barriers_of_a_hand_made_curve():
  # Line from 1 to 2: 1, 1.25, 1.5, 1.75, 2; excess 0, 0.75, 1.5, 0.25, 0.
  b = stability.barriers([1.0, 2.0, 3.0, 2.0, 2.0], [0.0, 0.25, 0.5, 0.75, 1.0])
  assert b["max_barrier"] == pytest.approx(1.5)
  assert b["midpoint_barrier"] == pytest.approx(1.5)
  # 0.5 off the grid: interpolated between 0.4 and 0.6; alphas in any order.
  b = stability.barriers([2.0, 0.0, 1.0, 0.0], [0.6, 0.0, 0.4, 1.0])
  assert b["max_barrier"] == pytest.approx(2.0)
  assert b["midpoint_barrier"] == pytest.approx(1.5)
  # A convex curve has no barrier.
  b = stability.barriers([1.0, 0.5, 1.0], [0.0, 0.5, 1.0])
  assert b["max_barrier"] == 0.0 and b["midpoint_barrier"] == pytest.approx(-0.5)
  with pytest.raises(UserInputError):
    stability.barriers([1.0, 2.0], [0.1, 1.0])


def test_batchnorm_path_recomputes_statistics():
  model, params_a, params_b, stats_a, stats_b = two_solutions("batch")
  images, labels = tiny_data()
  bn_images, _ = tiny_data(32, seed=1)
  metrics = stability.path_metrics(model, params_a, params_b, [0.0, 0.5, 1.0], images, labels,
                                   batch_stats_a=stats_a, batch_stats_b=stats_b, chunk_size=16,
                                   bn_images=bn_images)
  assert np.all(np.isfinite(metrics["loss_A"]))

  # Independently: flax's BatchNorm (momentum 0.9) from zero statistics gives 0.1 x the batch
  # statistics; average the two chunks of 16.
  def chunk_stats(chunk):
    zeros = jax.tree.map(jnp.zeros_like, stats_a)
    _, new = model.apply({"params": params_a, "batch_stats": zeros}, chunk, train=True,
                         mutable=["batch_stats"])
    return jax.tree.map(lambda s: s / 0.1, new["batch_stats"])

  expected = jax.tree.map(lambda s, t: (s + t) / 2, chunk_stats(bn_images[:16]),
                          chunk_stats(bn_images[16:]))
  recomputed = stability.recompute_batch_stats(model, params_a, stats_a, bn_images,
                                               chunk_size=16)
  for e, r in zip(jax.tree.leaves(expected), jax.tree.leaves(recomputed)):
    np.testing.assert_allclose(np.asarray(r), np.asarray(e), rtol=1e-4, atol=1e-6)
  direct = loss_lib.evaluate(loss_lib.make_eval_step(model), params_a, expected, images,
                              labels)
  assert metrics["loss_A"][0] == pytest.approx(direct["loss"], rel=1e-4)
  assert metrics["accuracy_A"][0] == pytest.approx(direct["accuracy"])


def test_batchnorm_path_without_bn_images_interpolates_running_statistics():
  model, params_a, params_b, stats_a, _ = two_solutions("batch")
  stats_b = jax.tree.map(lambda s: s + 0.5, stats_a)
  images, labels = tiny_data()
  metrics = stability.path_metrics(model, params_a, params_b, [0.0, 1.0], images, labels,
                                   batch_stats_a=stats_a, batch_stats_b=stats_b)
  eval_step = loss_lib.make_eval_step(model)
  assert metrics["loss_A"][0] == pytest.approx(
      loss_lib.evaluate(eval_step, params_a, stats_a, images, labels)["loss"], rel=1e-5)
  assert metrics["loss_A"][1] == pytest.approx(
      loss_lib.evaluate(eval_step, params_b, stats_b, images, labels)["loss"], rel=1e-5)


DEVICES_SCRIPT = r"""
import chex
chex.set_n_cpu_devices(8)  # Before anything starts a JAX backend.
import jax, numpy as np
assert jax.device_count() == 8, jax.devices()
from lottery_jax import parallel, stability
from lottery_jax import train as train_lib
from lottery_jax.models import get_model

model = get_model("convnet", 3, width=4, depth=2, norm="batch")
pa, sa = train_lib.init_variables(model, jax.random.key(0), (8, 8, 1))
pb, sb = train_lib.init_variables(model, jax.random.key(1), (8, 8, 1))
rng = np.random.default_rng(0)
x = rng.normal(size=(50, 8, 8, 1)).astype(np.float32)
y = rng.integers(0, 3, 50).astype(np.int32)
bn = rng.normal(size=(32, 8, 8, 1)).astype(np.float32)
out = []
for devices in (jax.devices()[:1], jax.devices()):
  mesh = parallel.data_mesh(devices)
  m = stability.path_metrics(model, pa, pb, [0.0, 0.3, 1.0], x, y, batch_stats_a=sa,
                             batch_stats_b=sb, bn_images=bn, chunk_size=16, mesh=mesh)
  out.append(m["loss_A"])
np.testing.assert_allclose(out[0], out[1], rtol=1e-5)
print("EQUAL", out)
"""


def test_sharded_over_8_devices_equals_one_device():
  root = pathlib.Path(__file__).resolve().parents[1]
  env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=str(root))  # 8 devices: chex.
  result = subprocess.run([sys.executable, "-c", DEVICES_SCRIPT], env=env, cwd=root,
                          capture_output=True, text=True, timeout=120)
  assert result.returncode == 0 and "EQUAL" in result.stdout, result.stderr[-3000:]
