"""Independent trainings together (train_many): same result as one after another."""

import jax
import numpy as np
import pytest

from lottery_jax import host_loop, optim, train_many
from lottery_jax import train as train_lib
from lottery_jax.errors import TrainingDiverged

import tiny


class RecordingLog:
  """A stand-in for rundir.MetricsLog that keeps the records."""

  def __init__(self):
    self.records = []

  def write(self, **record):
    self.records.append(record)


def tiny_setup():
  net = tiny.pruned_convnet()
  schedule, tx = tiny.sgd_with_step_decay(8)
  images, labels = tiny.sign_problem(32)
  return net.model, tx, schedule, net.params, net.batch_stats, net.masks, images, labels


def test_paired_training_equals_sequential_training(tmp_path):
  model, tx, schedule, params, batch_stats, m, images, labels = tiny_setup()
  # Two copies of one init and mask on two data orders and augmentations; batch 16 of 32
  # examples: 2 steps per epoch, so 8 steps cross 4 epoch permutations.
  data_keys = [jax.random.key(1), jax.random.fold_in(jax.random.key(1), 1)]
  train_keys = [jax.random.key(2), jax.random.fold_in(jax.random.key(2), 1)]
  common = dict(num_steps=8, batch_size=16, log_every=4)
  step = train_lib.make_train_step(model, tx, schedule, crop_padding=1, flip=True)
  seq_log, sequential = RecordingLog(), []
  for k in range(2):
    sequential.append(train_lib.fit(
        train_lib.new_state(params, batch_stats, m, tx), step, images, labels,
        data_key=data_keys[k], train_key=train_keys[k], metrics_log=seq_log, desc=f"copy {k}",
        **common))
  multi = train_many.make_multi_train_step(model, tx, schedule, crop_padding=1, flip=True)
  many_log = RecordingLog()
  together = train_many.fit_many(
      [train_lib.new_state(params, batch_stats, m, tx) for _ in range(2)], multi, images,
      labels, data_keys=data_keys, train_keys=train_keys, metrics_log=many_log,
      checkpoint_dirs=[str(tmp_path / "a"), str(tmp_path / "b")], **common)
  for s, t in zip(sequential, together):
    assert int(t.step) == 8
    for a, b in zip(jax.tree.leaves(s.params), jax.tree.leaves(t.params)):
      np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-4, atol=1e-5)
    for p, keep in zip(jax.tree.leaves(t.params), jax.tree.leaves(t.masks)):
      assert np.all(np.asarray(p)[~np.asarray(keep)] == 0.0)
  # The copies differ (two data orders), so agreement above is not trivial.
  flat = [np.concatenate([np.ravel(x) for x in jax.tree.leaves(t.params)]) for t in together]
  assert np.abs(flat[0] - flat[1]).max() > 1e-3
  key = lambda r: (r["stage"], r["step"])
  seq = {key(r): r for r in seq_log.records}
  assert sorted(seq) == sorted(key(r) for r in many_log.records)
  for r in many_log.records:
    for name in ("loss", "accuracy", "grad_norm", "learning_rate"):
      assert r[name] == pytest.approx(seq[key(r)][name], rel=1e-4, abs=1e-6)
  # Each copy's checkpoint resumes alone with train.fit at the end: nothing left to do.
  resumed = train_lib.fit(train_lib.new_state(params, batch_stats, m, tx), step, images,
                          labels, data_key=data_keys[1], train_key=train_keys[1],
                          checkpoint_dir=str(tmp_path / "b"), **common)
  for a, b in zip(jax.tree.leaves(resumed.params), jax.tree.leaves(together[1].params)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_paired_training_in_blocks_equals_paired_training_step_by_step(tmp_path):
  model, tx, schedule, params, batch_stats, m, images, labels = tiny_setup()
  multi = train_many.make_multi_train_step(model, tx, schedule, crop_padding=1, flip=True)
  common = dict(num_steps=8, batch_size=16, log_every=3,
                data_keys=[jax.random.key(1), jax.random.key(5)],
                train_keys=[jax.random.key(2), jax.random.key(6)])
  fresh = lambda: [train_lib.new_state(params, batch_stats, m, tx) for _ in range(2)]
  by_step = train_many.fit_many(fresh(), multi, images, labels, loop="step", **common)
  dirs = [str(tmp_path / "a"), str(tmp_path / "b")]
  in_blocks = train_many.fit_many(fresh(), multi, images, labels, loop="block", block_steps=3,
                                  checkpoint_dirs=dirs, checkpoint_every=4, **common)
  for s, t in zip(by_step, in_blocks):
    assert int(t.step) == 8
    for a, b in zip(jax.tree.leaves(s.params), jax.tree.leaves(t.params)):
      np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-5, atol=1e-6)
  from lottery_jax import checkpoint as ckpt_lib
  assert [ckpt_lib.manager(d).latest_step() for d in dirs] == [8, 8]


def test_together_choice():
  assert train_many.together(True) and train_many.together("true")
  assert not train_many.together(False) and not train_many.together("False")
  assert not train_many.together("auto")  # Slower on CPU and H200 (bench/README.md).


def test_pipeline_trains_lmc_pairs_together_with_the_same_result(tmp_path):
  from lottery_jax import default_config, runners, rundir

  def run(together):
    c = default_config.lottery_base()
    c.model.options.width = 4
    c.train.num_steps = 6
    c.train.batch_size = 64
    c.lottery.producers = ()
    c.lottery.replicates = 1
    c.stability.analyses = ("lmc",)
    c.stability.num_alphas = 3
    c.train.pairs_together = together
    c.lock()
    workdir = tmp_path / together
    return runners.run(c, str(workdir)), workdir

  (seq, seq_dir), (tog, tog_dir) = run("false"), run("true")
  for sub in ("real", "real_b"):
    a = rundir.read_json(str(seq_dir / "replicate_0" / "dense" / sub / "result.json"))
    b = rundir.read_json(str(tog_dir / "replicate_0" / "dense" / sub / "result.json"))
    assert b["test_loss"] == pytest.approx(a["test_loss"], rel=1e-4)
    assert b["test_accuracy"] == pytest.approx(a["test_accuracy"], abs=1 / 360 + 1e-9)
  lmc_seq, lmc_tog = seq["stability"]["lmc"]["dense"][0], tog["stability"]["lmc"]["dense"][0]
  np.testing.assert_allclose(lmc_tog["train_loss"], lmc_seq["train_loss"], rtol=1e-4)
  assert lmc_seq["train_loss"][0] != lmc_seq["train_loss"][-1]  # Two different networks.


def test_paired_training_stops_on_non_finite_parameters_with_a_finite_loss(tmp_path):
  model, _, _, params, batch_stats, m, images, labels = tiny_setup()
  # SGD at lr 1e4: the weights overflow to inf/NaN within a few steps; the checks must catch
  # the parameter norm even where the loss is still finite, and nothing non-finite is saved.
  tx = optim.make_optimizer("sgd", 1e4, momentum=0.9, weight_decay=0.0)
  multi = train_many.make_multi_train_step(model, tx)
  dirs = [tmp_path / "a", tmp_path / "b"]
  with pytest.raises(TrainingDiverged, match="diverged"):
    train_many.fit_many(
        [train_lib.new_state(params, batch_stats, m, tx) for _ in range(2)], multi, images,
        labels, num_steps=200, batch_size=16, log_every=1, checkpoint_every=1,
        data_keys=[jax.random.key(1), jax.random.key(2)],
        train_keys=[jax.random.key(3), jax.random.key(4)],
        checkpoint_dirs=[str(d) for d in dirs])
  from lottery_jax import checkpoint as ckpt_lib
  for d in dirs:
    mngr = ckpt_lib.manager(str(d))
    if mngr.latest_step() is not None:
      state, _ = ckpt_lib.restore_latest(mngr, train_lib.new_state(params, batch_stats, m, tx))
      assert bool(host_loop.all_finite(state.params))


def test_a_pair_killed_between_its_two_saves_resumes_bit_identically(tmp_path):
  model, tx, _, params, batch_stats, m, images, labels = tiny_setup()
  multi = train_many.make_multi_train_step(model, tx)
  keys = dict(data_keys=[jax.random.key(1), jax.random.key(2)],
              train_keys=[jax.random.key(3), jax.random.key(4)])
  fresh = lambda: [train_lib.new_state(params, batch_stats, m, tx) for _ in range(2)]
  fit = lambda root, steps: train_many.fit_many(
      fresh(), multi, images, labels, num_steps=steps, batch_size=16, log_every=2,
      checkpoint_every=2, checkpoint_dirs=[str(root / "a"), str(root / "b")], **keys)
  whole = fit(tmp_path / "whole", 8)
  fit(tmp_path / "killed", 6)
  from lottery_jax import checkpoint as ckpt_lib
  ckpt_lib.manager(str(tmp_path / "killed" / "b")).delete(6)  # Killed after a's save of 6.
  resumed = fit(tmp_path / "killed", 8)
  for w, r in zip(whole, resumed):
    for x, y in zip(jax.tree.leaves(w.params), jax.tree.leaves(r.params)):
      np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
