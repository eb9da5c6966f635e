"""The distillation state, and its run through the shared host loop (lottery_jax.host_loop:
progress bar, metrics, NaN stop, orbax checkpoints of the synthetic images and optimizer
state, and resume).

Every step is a pure function of (state, real data, key) and the step number lives in the
state, so a run resumed from a checkpoint computes exactly what an uninterrupted one would.
"""

from typing import Any, Callable

import flax
import jax

from lottery_jax import host_loop


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
  return host_loop.run(state, lambda state, step: step_fn(state, real, key),
                       num_steps=num_steps, desc=desc, checkpoint_dir=checkpoint_dir,
                       checkpoint_every=checkpoint_every, log_every=log_every,
                       metrics_log=metrics_log, event="distill",
                       watched=(("loss", "the matching loss"),), on_checkpoint=on_checkpoint)
