"""Independent trainings in one compiled program: the masked `train.train_step` vmapped over a
leading copy axis of the state, the batch and the key.

Copy k reads the batches of its own data key and augments with its own train key, exactly as
`train.fit` would run it alone (batch order a pure function of (data key, epoch)), and its
masks keep its pruned weights exactly zero; so the K results equal K separate `fit` runs up to
float rounding. Whether it pays depends on model and device; bench/paired_training.py measures
it (bench/README.md has the numbers).
"""

import functools
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec

from lottery_jax import blocks
from lottery_jax import checkpoint as ckpt_lib
from lottery_jax import host_loop
from lottery_jax import parallel
from lottery_jax import train as train_lib
from lottery_jax.data.batching import EpochCache
from lottery_jax.errors import TrainingDiverged, UserInputError

CHOICES = ("auto", "true", "false")


def together(choice) -> bool:
  """Whether to train independent copies together: True / 'true', False / 'false', or 'auto'.

  'auto' is False on every backend measured so far (bench/paired_training.py, bench/README.md:
  vmapped convolutions with per-copy weights become grouped ones, slower than one network
  after the other). 'true' stays for models and devices where a bench shows a gain."""
  choice = str(choice).lower()
  if choice == "auto":
    return False
  if choice == "true" and jax.process_count() > 1:
    raise UserInputError("train.pairs_together=true trains on one process's devices; use "
                         "'auto' or 'false' in a multi-process run")
  return choice == "true"


def make_multi_train_step(model, tx, schedule=None, crop_padding=0, flip=False,
                          compute_dtype="float32", augment=None):
  """`train.train_step` vmapped over a leading copy axis of (state, batch, key), jitted once,
  state donated. Metrics come back with the copy axis leading."""
  extra = {} if augment is None else {"augment": augment}
  step = functools.partial(train_lib.train_step, model=model, tx=tx, schedule=schedule,
                           crop_padding=crop_padding, flip=flip, compute_dtype=compute_dtype,
                           **extra)
  return jax.jit(jax.vmap(step), donate_argnums=0)


def stack(trees: Sequence):
  """One tree whose leaves have a leading axis of len(trees)."""
  return jax.tree.map(lambda *xs: jnp.stack(xs), *trees)


def unstack(tree, num: int) -> list:
  """The inverse of `stack`: `num` trees."""
  return [jax.tree.map(lambda x, i=i: x[i], tree) for i in range(num)]


def _rewind_to_shared_step(mngrs) -> int | None:
  """Delete every copy's checkpoints newer than the newest step all copies saved; that step
  (None: none shared, every copy starts over)."""
  shared = set.intersection(*(set(m.all_steps()) for m in mngrs))
  step = max(shared) if shared else None
  for m in mngrs:
    for s in m.all_steps():
      if step is None or s > step:
        m.delete(s)
  return step


def fit_many(states: Sequence[train_lib.TrainState], multi_step_fn, images, labels, *,
             num_steps: int, batch_size: int, data_keys: Sequence, train_keys: Sequence,
             mesh=None, checkpoint_dirs: Sequence[str] | None = None,
             checkpoint_every: int = 1000, log_every: int = 50, metrics_log=None,
             descs: Sequence[str] | None = None, log_fields: dict | None = None,
             loop: str = "auto",
             block_steps: int = blocks.DEFAULT_BLOCK_STEPS) -> list[train_lib.TrainState]:
  """Train K states (all at the same step) to `num_steps` together; copy k as `train.fit`
  with data_keys[k] and train_keys[k] would.

  Checkpoints (optional) go to checkpoint_dirs[k], one per copy, at the same steps as `fit`
  writes them. A resume starts every copy from the newest step all of them saved (the newer
  checkpoints of a copy that got ahead, killed between the copies' saves, are deleted and
  recomputed), so a killed pair resumes bit-identically to an uninterrupted one.
  Metrics are read back every `log_every` steps (always at the last step); a NaN or Inf
  watched metric (host_loop.WATCHED_METRICS) in any copy raises TrainingDiverged naming the
  copy and step, and a checkpoint is saved only when every copy's parameters are finite.
  `loop` and `block_steps` as in `train.fit` (blocks of the vmapped step, each copy gathering
  its own batches on the device).

  Returns:
    the K trained states.
  """
  num = len(states)
  descs = list(descs) if descs is not None else [f"copy {k}" for k in range(num)]
  if not num == len(data_keys) == len(train_keys) == len(descs):
    raise ValueError(f"fit_many: {num} states, {len(data_keys)} data keys, "
                     f"{len(train_keys)} train keys, {len(descs)} descriptions")
  mesh = parallel.mesh_for_batch(min(batch_size, len(labels)),
                                 parallel.data_mesh() if mesh is None else mesh)
  states = [parallel.replicate(s, mesh) for s in states]
  mngrs = [ckpt_lib.manager(d) for d in checkpoint_dirs] if checkpoint_dirs else []
  latest = {m.latest_step() for m in mngrs}
  if len(latest) > 1:  # Killed between the copies' saves: back to the step all reached.
    latest = {_rewind_to_shared_step(mngrs)}
  if latest and latest != {None}:
    states = [ckpt_lib.restore_latest(m, s)[0] for m, s in zip(mngrs, states)]
  starts = {int(s.step) for s in states}
  if len(starts) != 1:
    raise ValueError(f"fit_many: the states are at different steps {sorted(starts)}")
  start = starts.pop()
  state = stack(states)
  train_keys = stack(list(train_keys))
  orders = [EpochCache(k, len(labels), batch_size) for k in data_keys]
  sharding = NamedSharding(mesh, PartitionSpec(None, "data"))

  def flush(step, host):
    for s, m in host:
      for k in range(num):
        bad = host_loop.non_finite_metric({name: v[k] for name, v in m.items()})
        if bad is not None:
          raise TrainingDiverged(
              f"{descs[k]}: training diverged at step {s + 1}: {bad[0]} is {bad[1]}; lower "
              "the learning rate")
    for k in range(num):
      mean = host_loop.mean_metrics([{name: v[k] for name, v in m.items()} for _, m in host])
      if metrics_log is not None:
        metrics_log.write(event="train", stage=descs[k], step=step, **mean,
                          **(log_fields or {}))

  def advance(state, step):
    idx = [order.indices(step) for order in orders]
    batch = jax.device_put({"image": np.stack([images[i] for i in idx]),
                            "label": np.stack([labels[i] for i in idx])}, sharding)
    return multi_step_fn(state, batch, train_keys)

  def save(state, done):
    if not bool(host_loop.all_finite((state.params, state.batch_stats))):
      raise TrainingDiverged(
          f"{', '.join(descs)}: training diverged by step {done}: a parameter or BatchNorm "
          "statistic is not finite; lower the learning rate")
    for m, s in zip(mngrs, unstack(state, num)):
      ckpt_lib.save(m, done, s)

  block_kw = {}
  if blocks.use_blocks(loop):
    data = blocks.device_data({"image": images, "label": labels}, mesh)
    block_fn = blocks.block_step_for(multi_step_fn, block_steps, sharding)

    def advance_block(state, begin, end):
      indices = np.stack([blocks.block_indices(o, begin, end, block_steps) for o in orders], 1)
      return blocks.run_block(block_fn, state, data, parallel.replicate(indices, mesh),
                              end - begin, train_keys)

    block_kw = dict(advance_block=advance_block, block_steps=block_steps)
  state = host_loop.loop(state, advance, start=start, num_steps=num_steps,
                         log_every=log_every, flush=flush, save=save if mngrs else None,
                         checkpoint_every=checkpoint_every, **block_kw)
  return unstack(state, num)
