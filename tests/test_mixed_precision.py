"""train.compute_dtype='bfloat16': bf16 forward and backward passes on float32 master weights,
loss and optimizer state; pruned weights stay exactly zero; digits accuracy as float32's."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lottery_jax import config_blocks, default_config, masks, models, optim, pruning, rundir
from lottery_jax import runners
from lottery_jax import loss as loss_lib
from lottery_jax import train as train_lib
from lottery_jax.data.dataset import load_dataset
from lottery_jax.errors import UserInputError


def train_digits(compute_dtype, data, num_steps=220):
  """The quickstart's recipe (Adam, lr 0.01, batch 128, 20 epochs) on a 59%-sparse ConvNet-3
  of width 32; (trained state, test accuracy)."""
  model = models.get_model("convnet", 10, width=32)
  params, stats = train_lib.init_variables(model, jax.random.key(0), data.image_shape)
  m = pruning.prune(params, masks.init_masks(params), 0.59)
  schedule = optim.make_schedule("step", 0.01, num_steps)
  tx = optim.make_optimizer("adam", schedule, weight_decay=8e-4)
  step = train_lib.make_train_step(model, tx, schedule, compute_dtype=compute_dtype)
  state = train_lib.fit(train_lib.new_state(params, stats, m, tx), step, data.train_images,
                        data.train_labels, num_steps=num_steps, batch_size=128,
                        data_key=jax.random.key(1), train_key=jax.random.key(2))
  test = loss_lib.evaluate(loss_lib.make_eval_step(model), state.params, state.batch_stats,
                           data.test_images, data.test_labels)
  return state, test["accuracy"]


def test_bfloat16_digits_accuracy_within_a_point_and_pruned_weights_zero():
  data = load_dataset(default_config.get_config().data)
  state32, acc32 = train_digits("float32", data)
  state16, acc16 = train_digits("bfloat16", data)
  print(f"digits test accuracy: float32 {acc32:.4f}, bfloat16 {acc16:.4f}")
  assert abs(acc16 - acc32) <= 0.01, (acc16, acc32)
  assert acc16 > 0.9
  for p, keep in zip(jax.tree.leaves(state16.params), jax.tree.leaves(state16.masks)):
    p, keep = np.asarray(p), np.asarray(keep)
    assert p.dtype == np.float32
    assert np.all(p[~keep] == 0.0), "a pruned weight moved"
  for leaf in jax.tree.leaves(state16.opt_state):
    if jnp.issubdtype(leaf.dtype, jnp.floating):
      assert leaf.dtype == jnp.float32
  # The two differ (bf16 rounding), so the comparison above is not trivial.
  a, b = jax.tree.leaves(state32.params)[0], jax.tree.leaves(state16.params)[0]
  assert not np.array_equal(np.asarray(a), np.asarray(b))


def test_bfloat16_step_computes_in_bfloat16():
  model = models.get_model("convnet", 2, width=4, depth=2)
  params, stats = train_lib.init_variables(model, jax.random.key(0), (8, 8, 1))
  tx = optim.make_optimizer("sgd", 0.1)
  state = train_lib.new_state(params, stats, masks.init_masks(params), tx)
  batch = {"image": jnp.ones((4, 8, 8, 1)), "label": jnp.zeros(4, jnp.int32)}
  step = train_lib.make_train_step(model, tx, compute_dtype="bfloat16")
  text = step.lower(state, batch, jax.random.key(0)).as_text()
  assert "bf16" in text and "convolution" in text
  assert "bf16" not in train_lib.make_train_step(model, tx).lower(
      state, batch, jax.random.key(0)).as_text()
  with pytest.raises(UserInputError, match="'bfloat16', 'float32'"):
    train_lib.make_train_step(model, tx, compute_dtype="float16")


def test_new_recipe_fields_at_their_defaults_keep_a_runs_identity():
  c = default_config.get_config()
  old = rundir.config_to_dict(c)
  for recipe in (old["train"], old["distilled"]["train"]):
    for name in config_blocks.RUN_DEFAULTS:
      recipe.pop(name)  # A config.json written before these fields existed.
  d = default_config.distill_base()
  old_d = rundir.config_to_dict(d)
  for name in config_blocks.RUN_DEFAULTS:
    old_d["distill"]["eval_train"].pop(name)
  assert runners.get("distill").identity(old_d) == runners.identity(d)
  get = runners.get(c.experiment)
  assert get.identity(old) == runners.identity(c)
  c.unlock()
  c.train.compute_dtype = "bfloat16"
  assert get.identity(old) != runners.identity(c)


@pytest.mark.parametrize("field,value,match", [
    ("compute_dtype", "float16", "train.compute_dtype"), ("loop", "scan", "train.loop"),
    ("block_steps", 0, "train.block_steps")])
def test_bad_execution_fields_are_refused(field, value, match):
  from lottery_jax import validate
  c = default_config.get_config()
  c.unlock()
  c.train[field] = value
  with pytest.raises(UserInputError, match=match):
    validate.check(c)
