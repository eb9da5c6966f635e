"""Small builders the tests share: setting dotted config fields, the small digits lottery config,
a pruned width-4 ConvNet and its optimizer, a toy two-class problem.

Plain functions, beside the fixtures of conftest.py that wrap them, because a test hands config
builders to child processes by name (cli_runner.launch_run imports a tests/ module)."""

from typing import NamedTuple

import jax
import numpy as np

from lottery_jax import default_config, masks, models, optim, pruning
from lottery_jax import train as train_lib


def set_fields(config, **dotted):
  """`config` with each 'block.field' (or 'block.sub.field') set; returns it."""
  with config.unlocked():
    for path, value in dotted.items():
      *parents, leaf = path.split(".")
      node = config
      for p in parents:
        node = node[p]
      node[leaf] = value
  return config


def lottery_config(num_steps: int, **dotted):
  """The lottery defaults on digits at width 8, batch 64, one replicate, `num_steps` steps per
  real training, then `dotted` fields (set_fields)."""
  c = default_config.lottery_base()
  c.model.options.width = 8
  c.train.num_steps = num_steps
  c.train.batch_size = 64
  c.lottery.replicates = 1
  return set_fields(c, **dotted)


class PrunedConvNet(NamedTuple):
  """A width-4, depth-2 ConvNet for 8x8x1 inputs and 2 classes, pruned 3 times by 30%.

  Attributes:
    model: the flax module.
    params: its initial parameters (key 0).
    batch_stats: its initial BatchNorm statistics.
    masks: bool pytree like params, True where a weight is kept.
  """
  model: object
  params: dict
  batch_stats: dict
  masks: dict


def pruned_convnet() -> PrunedConvNet:
  model = models.get_model("convnet", 2, width=4, depth=2)
  params, batch_stats = train_lib.init_variables(model, jax.random.key(0), (8, 8, 1))
  m = masks.init_masks(params)
  for _ in range(3):
    m = pruning.prune(params, m, 0.3)
  return PrunedConvNet(model, params, batch_stats, m)


def sgd_with_step_decay(num_steps: int):
  """(schedule, optimizer): SGD lr 0.05 with momentum 0.9 and L2 1e-3, x0.1 half-way."""
  schedule = optim.make_schedule("step", 0.05, num_steps, decay_at=(0.5,), decay_factor=0.1)
  return schedule, optim.make_optimizer("sgd", schedule, momentum=0.9, weight_decay=1e-3)


def sign_problem(n: int, seed: int = 0):
  """(images, labels): n Gaussian 8x8x1 images, labelled by the sign of their mean."""
  rng = np.random.default_rng(seed)
  images = rng.normal(size=(n, 8, 8, 1)).astype(np.float32)
  return images, (images.mean(axis=(1, 2, 3)) > 0).astype(np.int32)


def assert_pruned_stay_zero_and_kept_train(params, initial, masks) -> None:
  """Every pruned weight of `params` is exactly zero and the kept weights of each kernel moved
  from `initial` (the params before training)."""
  for p, p0, m in zip(jax.tree.leaves(params), jax.tree.leaves(initial), jax.tree.leaves(masks)):
    p, m = np.asarray(p), np.asarray(m)
    assert np.all(p[~m] == 0.0), "a pruned weight moved"
    if m.any() and p.ndim >= 2:
      assert not np.array_equal(p[m], p0[m]), "kept weights did not train"
