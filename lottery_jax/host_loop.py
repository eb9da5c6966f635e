"""The host loop every run shares (real training, distilled training, distillation, copies
trained together): steps, pending metrics read back in blocks, the NaN/Inf stop, the
progress bar, metrics.jsonl records, orbax checkpoints and resume.

  state = host_loop.run(state, advance, num_steps=1000, desc="dense", checkpoint_dir=path)

`advance(state, step) -> (state, metrics)` does one step on the device (the step number
decides its batch and keys), or `advance_block(state, begin, end)` a block of steps
(lottery_jax.blocks), so a run resumed from a checkpoint computes exactly what an
uninterrupted one would. Metrics stay on the device until a flush: every `log_every` steps,
before every checkpoint and at the last step; the host runs at most MAX_STEPS_AHEAD
dispatches ahead of the device.
"""

import logging
import math
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from lottery_jax import blocks
from lottery_jax import checkpoint as ckpt_lib
from lottery_jax import parallel
from lottery_jax import progress
from lottery_jax.errors import TrainingDiverged

log = logging.getLogger(__name__)

# Step metrics that must stay finite, with how a divergence message names them.
WATCHED_METRICS = (("loss", "the loss"), ("grad_norm", "the gradient norm"),
                   ("update_norm", "the update norm"), ("param_norm", "the parameter norm"))

# Dispatches (steps or blocks) the host may run ahead of the device. XLA:CPU admits at most 32
# computations in flight per device (PjRt's max_inflight_computations); with several processes
# and a log_every above that, a step's launch on one device could block at the limit while
# the other process's devices waited for it inside an all-reduce, and every process hung
# (jaxlib 0.10.2, 2 processes x 2 CPU devices, now and then; docs/multihost.md). The device
# still never waits on the host while a step takes it longer than the host needs to dispatch.
MAX_STEPS_AHEAD = 8

Advance = Callable[[Any, int], tuple[Any, Any]]
AdvanceBlock = Callable[[Any, int, int], tuple[Any, Any]]


def non_finite_metric(metrics, watched: Sequence[tuple[str, str]] = WATCHED_METRICS
                      ) -> tuple[str, float] | None:
  """(name, value) of the first watched metric of one step's host metrics that is NaN or
  Inf, or None when all are finite."""
  for key, what in watched:
    if key in metrics and not math.isfinite(float(metrics[key])):
      return what, float(metrics[key])
  return None


def all_finite(tree) -> jax.Array:
  """A bool scalar: every entry of every inexact leaf is finite."""
  leaves = [jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree)
            if jnp.issubdtype(jnp.result_type(x), jnp.inexact)]
  return jnp.all(jnp.stack(leaves)) if leaves else jnp.asarray(True)


def mean_metrics(host_metrics: Sequence[dict]) -> dict[str, float]:
  """The mean of every metric over the steps of one flush."""
  return {k: float(np.mean([m[k] for m in host_metrics])) for k in host_metrics[0]}


def loop(state, advance: Advance | None, *, start: int, num_steps: int, log_every: int,
         flush: Callable[[int, list], None], save: Callable[[Any, int], None] | None = None,
         checkpoint_every: int = 1000, bar=None, advance_block: AdvanceBlock | None = None,
         block_steps: int = 1):
  """Steps start .. num_steps - 1 of `advance`, the cadence written once.

  flush(done, [(step, host metrics), ...]) gets the metrics read back since the last flush
  (every `log_every` steps, before every save and at the last step); save(state, done) runs
  every `checkpoint_every` steps and at the last step (never when None); `bar` (a
  progress.bar) advances by one per step and is closed at the end.

  With `advance_block(state, begin, end) -> (state, metrics stacked over the steps)`, steps
  run in blocks of at most `block_steps` that end at every save (blocks.block_ranges); the
  flushes and saves are those of the step-by-step loop, each made after the block holding
  its step.
  """
  saving = save is not None
  due = lambda done: saving and (done % checkpoint_every == 0 or done == num_steps)
  flush_due = lambda done: done % log_every == 0 or due(done) or done == num_steps
  if advance_block is None:
    ranges = [(step, step + 1) for step in range(start, num_steps)]
  else:
    ranges = blocks.block_ranges(start, num_steps, block_steps,
                                 checkpoint_every if saving else None)
  pending = []  # (first step, steps in a block or None for one step, metrics on device).
  ready = []    # (step, host metrics) read back, not yet flushed.
  try:
    for begin, end in ranges:
      if advance_block is None:
        state, metrics = advance(state, begin)
        pending.append((begin, None, metrics))
      else:
        state, metrics = advance_block(state, begin, end)
        pending.append((begin, end - begin, metrics))
      if len(pending) > MAX_STEPS_AHEAD:  # Wait for the dispatch MAX_STEPS_AHEAD back.
        jax.block_until_ready(pending[-MAX_STEPS_AHEAD - 1][2])
      if bar is not None:
        bar.update(end - begin)
      points = [done for done in range(begin + 1, end + 1) if flush_due(done)]
      if points:
        ready += _read_back(pending)
        pending = []
        for done in points:
          flush(done, [r for r in ready if r[0] < done])
          ready = [r for r in ready if r[0] >= done]
      if due(end):
        save(state, end)
  finally:
    if bar is not None:
      bar.close()
  return state


def _read_back(pending) -> list:
  """[(step, host metrics)] of pending (first step, block length or None, device metrics)."""
  host = jax.device_get([m for _, _, m in pending])
  out = []
  for (first, length, _), metrics in zip(pending, host):
    if length is None:
      out.append((first, metrics))
    else:
      out += [(first + i, {k: v[i] for k, v in metrics.items()}) for i in range(length)]
  return out


def run(state, advance: Advance, *, num_steps: int, desc: str,
        checkpoint_dir: str | None = None, checkpoint_every: int = 1000, log_every: int = 50,
        metrics_log=None, event: str = "train", log_fields: dict | None = None,
        watched: Sequence[tuple[str, str]] = WATCHED_METRICS,
        finite_state: Callable[[Any], Any] | None = None,
        on_checkpoint: Callable[[int], None] | None = None,
        advance_block: AdvanceBlock | None = None, block_steps: int = 1):
  """Run `advance` from state.step to `num_steps`, resuming from the newest checkpoint in
  `checkpoint_dir` if there is one.

  A NaN or Inf watched metric raises TrainingDiverged naming `desc`, the step, the quantity
  and the newest checkpoint (always from before the divergence); so does a state whose
  `finite_state(state)` is False at a checkpoint, which is then not saved.

  Args:
    state: the initial state (a pytree with an int `step`; also the template for restoring).
    advance: (state, step) -> (state, metrics on device).
    metrics_log: a rundir.MetricsLog (optional): one record per flush, event `event`, with
      the mean metrics and `log_fields`.
    on_checkpoint: called with the step after each save (tests use it to interrupt a run).
    advance_block, block_steps: run in blocks instead (see `loop`; `advance` may be None).
  """
  mngr = ckpt_lib.manager(checkpoint_dir) if checkpoint_dir else None
  if mngr is not None:
    restored, restored_step = ckpt_lib.restore_latest(mngr, state)
    if restored is not None:
      state = restored
      if restored_step < num_steps:
        log.info("%s: resumed from checkpoint at step %d", desc, restored_step)
  start = int(state.step)
  last_good = mngr.latest_step() if mngr is not None else None
  bar = progress.bar(num_steps, start, desc, show=parallel.is_writer())

  def diverged(step, what, value):
    where = (f"last good checkpoint: step {last_good} in {checkpoint_dir}"
             if last_good is not None else "no checkpoint was saved")
    return TrainingDiverged(f"{desc}: training diverged at step {step}: {what} is {value}; "
                            f"{where}; lower the learning rate")

  def flush(done, host):
    for s, m in host:
      bad = non_finite_metric(m, watched)
      if bad is not None:
        raise diverged(s + 1, *bad)
    mean = mean_metrics([m for _, m in host])
    if metrics_log is not None:
      metrics_log.write(event=event, stage=desc, step=done, **mean, **(log_fields or {}))
    shown = {"loss": f"{mean['loss']:.4f}"}
    if "accuracy" in mean:
      shown["acc"] = f"{mean['accuracy']:.3f}"
    if bar.disable and parallel.is_writer():
      log.info("%s step %d/%d: loss %.4f%s", desc, done, num_steps, mean["loss"],
               f" accuracy {mean['accuracy']:.4f}" if "accuracy" in mean else "")
    bar.set_postfix(**shown)

  def save(state, done):
    nonlocal last_good
    if finite_state is not None and not bool(finite_state(state)):
      raise diverged(done, "a parameter or BatchNorm statistic", "not finite")
    ckpt_lib.save(mngr, done, state)
    last_good = done
    if on_checkpoint is not None:
      on_checkpoint(done)

  return loop(state, advance, start=start, num_steps=num_steps, log_every=log_every,
              flush=flush, save=save if mngr is not None else None,
              checkpoint_every=checkpoint_every, bar=bar, advance_block=advance_block,
              block_steps=block_steps)
