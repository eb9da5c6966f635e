"""The distillation state and its host loop: progress bar, metrics, NaN stop, orbax
checkpoints of the synthetic images and optimizer state, and resume.

Every step is a pure function of (state, real data, key) and the step number lives in the
state, so a run resumed from a checkpoint computes exactly what an uninterrupted one would.
"""

import logging
import math
import sys
from typing import Any, Callable

import flax
import jax
import numpy as np
from tqdm import tqdm

from lottery_jax import checkpoint as ckpt_lib
from lottery_jax.train import TrainingDiverged

log = logging.getLogger(__name__)


@flax.struct.dataclass
class DistillState:
  """Everything that changes during distillation, as one pytree.

  Attributes:
    step: int32 scalar, distillation iterations done.
    images: float32 (N, H, W, C) the learnable synthetic images, sorted by class (for
      multi-formation, the stored images before decoding).
    opt_state: the images' optimizer state.
    net: the matching network's TrainState for methods that train it (IDC), else None.
  """
  step: jax.Array
  images: jax.Array
  opt_state: Any
  net: Any = None


def run(state: DistillState, step_fn: Callable, real, key, *, num_steps: int,
        checkpoint_dir: str | None = None, checkpoint_every: int = 500, log_every: int = 50,
        metrics_log=None, desc: str = "distill",
        on_checkpoint: Callable[[int], None] | None = None) -> DistillState:
  """Run `step_fn(state, real, key) -> (state, metrics)` until `num_steps`.

  Resumes from the newest checkpoint in `checkpoint_dir` when there is one. Metrics (at
  least 'loss') are read back every `log_every` steps and before every checkpoint; a NaN or
  Inf loss raises TrainingDiverged. `on_checkpoint(step)` is called after each save (tests
  use it to interrupt a run).
  """
  mngr = ckpt_lib.manager(checkpoint_dir) if checkpoint_dir else None
  if mngr is not None:
    restored, restored_step = ckpt_lib.restore_latest(mngr, state)
    if restored is not None:
      state = restored
      log.info("%s: resumed from checkpoint at step %d", desc, restored_step)
  start = int(state.step)
  pending = []
  bar = tqdm(total=num_steps, initial=start, desc=desc, dynamic_ncols=True, leave=False,
             disable=None, file=sys.stderr)

  def flush(step):
    nonlocal pending
    host = jax.device_get([m for _, m in pending])
    for (s, _), m in zip(pending, host):
      if not math.isfinite(float(m["loss"])):
        raise TrainingDiverged(f"{desc}: matching loss is {float(m['loss'])} at step {s + 1}")
    mean = {k: float(np.mean([m[k] for m in host])) for k in host[0]}
    pending = []
    if metrics_log is not None:
      metrics_log.write(event="distill", stage=desc, step=step, **mean)
    if bar.disable:
      log.info("%s step %d/%d: loss %.4f", desc, step, num_steps, mean["loss"])
    bar.set_postfix(loss=f"{mean['loss']:.4g}")

  try:
    for step in range(start, num_steps):
      state, metrics = step_fn(state, real, key)
      pending.append((step, metrics))
      done = step + 1
      bar.update(1)
      save_now = mngr is not None and (done % checkpoint_every == 0 or done == num_steps)
      if done % log_every == 0 or save_now or done == num_steps:
        flush(done)
      if save_now:
        ckpt_lib.save(mngr, done, state)
        if on_checkpoint is not None:
          on_checkpoint(done)
  finally:
    bar.close()
  return state
