"""Masked training: pruned weights stay zero, schedules, evaluation, NaN stop, resume."""

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lottery_jax import masks, models, pruning
from lottery_jax import checkpoint as ckpt_lib
from lottery_jax import host_loop
from lottery_jax import loss as loss_lib
from lottery_jax import optim
from lottery_jax import train as train_lib
from lottery_jax.errors import TrainingDiverged, UserInputError

import tiny


def tiny_problem(n=64, seed=0):
  rng = np.random.default_rng(seed)
  images = rng.normal(size=(n, 8, 8, 1)).astype(np.float32)
  labels = (images.mean(axis=(1, 2, 3)) > 0).astype(np.int32)
  return images, labels


def tiny_setup(optimizer="sgd", weight_decay=1e-3, sparsity_rounds=3, lr=0.05):
  model = models.get_model("convnet", 2, width=4, depth=2)
  params, batch_stats = train_lib.init_variables(model, jax.random.key(0), (8, 8, 1))
  m = masks.init_masks(params)
  for _ in range(sparsity_rounds):
    m = pruning.prune(params, m, 0.3)
  tx = optim.make_optimizer(optimizer, lr, momentum=0.9, weight_decay=weight_decay)
  return model, train_lib.new_state(params, batch_stats, m, tx), tx


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "adamw"])
def test_pruned_weights_stay_exactly_zero(optimizer):
  model, state, tx = tiny_setup(optimizer)
  step = train_lib.make_train_step(model, tx, crop_padding=1, flip=True)
  images, labels = tiny_problem()
  initial = jax.tree.map(np.asarray, state.params)
  for i in range(6):
    state, metrics = step(state, {"image": images[:32], "label": labels[:32]}, jax.random.key(i))
  assert int(state.step) == 6
  tiny.assert_pruned_stay_zero_and_kept_train(state.params, initial, state.masks)
  # Optimizer moments of pruned weights stay zero too.
  for leaf in jax.tree.leaves(state.opt_state):
    assert bool(jnp.all(jnp.isfinite(leaf)))
  assert set(metrics) >= {"loss", "accuracy", "grad_norm", "update_norm", "param_norm"}


def test_training_lowers_the_loss():
  model, state, tx = tiny_setup("adam", lr=0.01, sparsity_rounds=0)
  step = train_lib.make_train_step(model, tx)
  images, labels = tiny_problem()
  batch = {"image": images, "label": labels}
  losses = []
  for _ in range(60):
    state, metrics = step(state, batch, jax.random.key(0))
    losses.append(float(metrics["loss"]))
  assert losses[-1] < 0.5 * losses[0]


def test_step_schedule_decays_at_the_given_fractions():
  s = optim.make_schedule("step", 1.0, 100, decay_at=(0.5, 0.8), decay_factor=0.1)
  assert float(s(49)) == 1.0
  assert float(s(50)) == pytest.approx(0.1)
  assert float(s(80)) == pytest.approx(0.01)


def test_warmup_and_cosine():
  s = optim.make_schedule("cosine", 2.0, 110, warmup_steps=10)
  assert float(s(0)) == 0.0
  assert float(s(10)) == pytest.approx(2.0)
  assert float(s(110)) == pytest.approx(0.0, abs=1e-6)
  assert float(optim.make_schedule("constant", 0.3, 5)(4)) == pytest.approx(0.3)


def test_unknown_optimizer_and_schedule_list_choices():
  with pytest.raises(UserInputError, match="'adam', 'adamw', 'sgd'"):
    optim.make_optimizer("lamb", 0.1)
  with pytest.raises(UserInputError, match="'constant', 'cosine', 'step'"):
    optim.make_schedule("linear", 0.1, 10)


def test_evaluate_pads_the_last_batch_without_changing_the_result():
  model, state, _ = tiny_setup()
  images, labels = tiny_problem(n=50)
  eval_step = loss_lib.make_eval_step(model)
  whole = loss_lib.evaluate(eval_step, state.params, state.batch_stats, images, labels, 50)
  chunked = loss_lib.evaluate(eval_step, state.params, state.batch_stats, images, labels, 16)
  logits = model.apply({"params": state.params}, images)
  direct_loss = float(loss_lib.cross_entropy(logits, labels))
  direct_acc = float(jnp.mean(jnp.argmax(logits, -1) == labels))
  assert whole["loss"] == pytest.approx(direct_loss, rel=1e-5)
  assert chunked["loss"] == pytest.approx(direct_loss, rel=1e-5)
  assert whole["accuracy"] == chunked["accuracy"] == pytest.approx(direct_acc)


def _fit(state, step_fn, directory, num_steps=10, **kw):
  images, labels = tiny_problem()
  return train_lib.fit(state, step_fn, images, labels, num_steps=num_steps, batch_size=16,
                       data_key=jax.random.key(1), train_key=jax.random.key(2),
                       checkpoint_dir=str(directory), checkpoint_every=4, log_every=3, **kw)


def traced_once_step(model, tx, **static):
  """`train_step` jitted as make_train_step does, failing if it is traced twice."""
  chex.clear_trace_counter()
  step = functools.partial(train_lib.train_step, model=model, tx=tx, **static)

  @chex.assert_max_traces(n=1)
  def traced(state, batch, key):
    return step(state, batch, key)

  return jax.jit(traced, donate_argnums=0)


def test_resume_after_interruption_gives_identical_parameters(tmp_path):
  model, _, tx = tiny_setup("sgd")
  step = traced_once_step(model, tx, crop_padding=1, flip=True)
  fresh = lambda: tiny_setup("sgd")[1]
  reference = _fit(fresh(), step, tmp_path / "a")

  class Interrupt(Exception):
    pass

  def dies_at_step_7(state, batch, key):
    if int(state.step) == 7:
      raise Interrupt()
    return step(state, batch, key)

  with pytest.raises(Interrupt):
    _fit(fresh(), dies_at_step_7, tmp_path / "b")
  resumed = _fit(fresh(), step, tmp_path / "b")
  assert int(resumed.step) == 10
  # The restored state reused the step's one compilation (traced_once_step).
  for a, b in zip(jax.tree.leaves(reference), jax.tree.leaves(resumed)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_nan_loss_stops_with_step_and_last_good_checkpoint(tmp_path):
  model, state, tx = tiny_setup("sgd")
  step = train_lib.make_train_step(model, tx)

  def nan_from_step_5(state, batch, key):
    state, metrics = step(state, batch, key)
    bad = (state.step > 5)
    return state, dict(metrics, loss=jnp.where(bad, jnp.nan, metrics["loss"]))

  with pytest.raises(TrainingDiverged,
                     match=r"at step 6: the loss is nan; last good checkpoint: step 4"):
    _fit(state, nan_from_step_5, tmp_path / "c")


def test_nan_parameters_with_a_finite_loss_stop_and_are_never_checkpointed(tmp_path):
  model, state, tx = tiny_setup("sgd")
  step = train_lib.make_train_step(model, tx)

  def params_nan_from_step_6(state, batch, key):
    # The step's own loss stays finite; only the parameters (and their norm) turn NaN.
    state, metrics = step(state, batch, key)
    bad = state.step >= 6
    params = jax.tree.map(lambda p: jnp.where(bad, jnp.nan, p), state.params)
    norm = jnp.where(bad, jnp.nan, metrics["param_norm"])
    return state.replace(params=params), dict(metrics, param_norm=norm)

  with pytest.raises(TrainingDiverged,
                     match=r"at step 6: the parameter norm is nan; last good checkpoint: step 4"):
    _fit(state, params_nan_from_step_6, tmp_path / "d", num_steps=8)
  mngr = ckpt_lib.manager(str(tmp_path / "d"))
  assert mngr.latest_step() == 4
  restored, _ = ckpt_lib.restore_latest(mngr, tiny_setup("sgd")[1])
  assert bool(host_loop.all_finite(restored.params))
