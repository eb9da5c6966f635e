"""lottery_jax.host_loop: the cadence of flushes and saves, resume, the NaN stop, and that
real training, copies trained together and distillation all run through it."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lottery_jax import host_loop, masks, models, optim, train_many
from lottery_jax import train as train_lib
from lottery_jax.distill import loop as distill_loop
from lottery_jax.distill.loop import DistillState
from lottery_jax.errors import TrainingDiverged


def counting_state(step=0):
  return DistillState(step=jnp.asarray(step, jnp.int32), images=jnp.zeros((2,)), opt_state=())


def add_one(state, step):
  del step
  return state.replace(step=state.step + 1, images=state.images + 1.0), {"loss": state.images[0]}


def test_loop_flushes_every_log_every_before_saves_and_at_the_end():
  flushes, saves = [], []
  state = host_loop.loop(counting_state(), add_one, start=0, num_steps=7, log_every=3,
                         flush=lambda done, host: flushes.append((done, [s for s, _ in host])),
                         save=lambda state, done: saves.append(done), checkpoint_every=2)
  assert int(state.step) == 7
  assert saves == [2, 4, 6, 7]
  assert flushes == [(2, [0, 1]), (3, [2]), (4, [3]), (6, [4, 5]), (7, [6])]


@pytest.mark.parametrize("blocked", [False, True])
def test_the_host_never_runs_more_than_max_steps_ahead_of_the_device(monkeypatch, blocked):
  # With log_every far above the bound, only the bound makes the host wait: at every
  # dispatch, all but the last MAX_STEPS_AHEAD earlier dispatches have been waited for.
  waited, ahead_at_dispatch = set(), []
  monkeypatch.setattr(host_loop.jax, "block_until_ready",
                      lambda metrics: waited.add(int(metrics["first"])) or metrics)
  monkeypatch.setattr(host_loop, "_read_back", lambda pending: (
      waited.update(first for first, _, _ in pending) or []))

  def dispatch(state, begin, end):
    ahead_at_dispatch.append(sum(1 for b in range(0, begin, 2 if blocked else 1)
                                 if b not in waited))
    return state.replace(step=state.step + end - begin), {"first": np.int32(begin)}

  kwargs = (dict(advance=None, advance_block=dispatch, block_steps=2) if blocked
            else dict(advance=lambda state, step: dispatch(state, step, step + 1)))
  state = host_loop.loop(counting_state(), start=0, num_steps=60, log_every=40,
                         flush=lambda done, host: None, **kwargs)
  assert int(state.step) == 60
  assert max(ahead_at_dispatch) == host_loop.MAX_STEPS_AHEAD
  assert host_loop.MAX_STEPS_AHEAD < 32  # XLA:CPU's in-flight limit per device.


def test_run_resumes_from_its_newest_checkpoint(tmp_path):
  ckpt = str(tmp_path / "ckpt")
  calls = []

  def counted(state, step):
    calls.append(step)
    return add_one(state, step)

  host_loop.run(counting_state(), counted, num_steps=4, desc="t", checkpoint_dir=ckpt,
                checkpoint_every=2)
  calls.clear()
  state = host_loop.run(counting_state(), counted, num_steps=6, desc="t", checkpoint_dir=ckpt,
                        checkpoint_every=2)
  assert calls == [4, 5] and int(state.step) == 6
  np.testing.assert_array_equal(np.asarray(state.images), [6.0, 6.0])


def test_run_stops_at_a_non_finite_metric_naming_the_step_and_checkpoint(tmp_path):
  def blows_up(state, step):
    state, metrics = add_one(state, step)
    return state, {"loss": jnp.where(step >= 4, jnp.nan, metrics["loss"])}

  with pytest.raises(TrainingDiverged, match=r"^t: training diverged at step 5: the matching "
                     r"loss is nan; last good checkpoint: step 4 in .*ckpt"):
    host_loop.run(counting_state(), blows_up, num_steps=8, desc="t",
                  checkpoint_dir=str(tmp_path / "ckpt"), checkpoint_every=2, log_every=1,
                  watched=(("loss", "the matching loss"),))


def test_training_copies_and_distillation_all_use_the_one_loop(monkeypatch):
  used = []
  original = host_loop.loop

  def recording(state, advance, **kwargs):
    used.append(kwargs["num_steps"])
    return original(state, advance, **kwargs)

  monkeypatch.setattr(host_loop, "loop", recording)
  model = models.get_model("mlp", 2, hidden=(4,))
  params, stats = train_lib.init_variables(model, jax.random.key(0), (2, 2, 1))
  tx = optim.make_optimizer("sgd", 0.1)
  fresh = lambda: train_lib.new_state(params, stats, masks.init_masks(params), tx)
  images = np.zeros((8, 2, 2, 1), np.float32)
  labels = np.zeros(8, np.int32)
  keys = dict(data_key=jax.random.key(1), train_key=jax.random.key(2))
  train_lib.fit(fresh(), train_lib.make_train_step(model, tx), images, labels, num_steps=2,
                batch_size=4, **keys)
  train_many.fit_many([fresh(), fresh()], train_many.make_multi_train_step(model, tx), images,
                      labels, num_steps=3, batch_size=4, data_keys=[keys["data_key"]] * 2,
                      train_keys=[keys["train_key"]] * 2)
  distill_loop.run(counting_state(), lambda state, real, key: add_one(state, 0), None,
                   jax.random.key(0), num_steps=4)
  assert used == [2, 3, 4]
