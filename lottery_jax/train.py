"""Masked training: the train state, optimizers and schedules, one pure jitted step,
evaluation, and the host loop (progress bar, metrics.jsonl, NaN/Inf stop, checkpoints, resume).

Pruned weights stay exactly zero: the optimizer is wrapped in `masks.masked_optimizer`, whose
updates are zero on pruned weights, so SGD momentum, Adam moments and weight decay never revive
them.
"""

import functools
import logging
import math
import sys
from typing import Any, Callable, Sequence

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from tqdm import tqdm

from lottery_jax import checkpoint as ckpt_lib
from lottery_jax import masks as masks_lib
from lottery_jax import parallel
from lottery_jax import tree
from lottery_jax.data import augment as augment_lib
from lottery_jax.data.batching import EpochCache
from lottery_jax.errors import unknown_choice

log = logging.getLogger(__name__)

OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("constant", "step", "cosine")


class TrainingDiverged(RuntimeError):
  """The loss, gradients or parameters became NaN or Inf; the message names the stage, the
  step, the quantity and the last good checkpoint."""

# Step metrics that must stay finite, with how a divergence message names them.
WATCHED_METRICS = (("loss", "the loss"), ("grad_norm", "the gradient norm"),
                   ("update_norm", "the update norm"), ("param_norm", "the parameter norm"))


def non_finite_metric(metrics) -> tuple[str, float] | None:
  """(name, value) of the first watched metric of one step's host metrics that is NaN or
  Inf, or None when all are finite."""
  for key, what in WATCHED_METRICS:
    if key in metrics and not math.isfinite(float(metrics[key])):
      return what, float(metrics[key])
  return None


def all_finite(tree) -> jax.Array:
  """A bool scalar: every entry of every leaf is finite."""
  leaves = [jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree)
            if jnp.issubdtype(jnp.result_type(x), jnp.inexact)]
  return jnp.all(jnp.stack(leaves)) if leaves else jnp.asarray(True)


@flax.struct.dataclass
class TrainState:
  """Everything that changes during training, as one pytree.

  Attributes:
    step: int32 scalar, number of updates applied so far.
    params: the model's parameters.
    batch_stats: BatchNorm running statistics ({} for models without BatchNorm).
    opt_state: a masks.MaskedState: its own copy of the masks and the optimizer's state.
    masks: bool tree mirroring params, True where a weight is kept (see lottery_jax.masks).
  """
  step: jax.Array
  params: Any
  batch_stats: Any
  opt_state: Any
  masks: Any


def make_schedule(kind: str, learning_rate: float, total_steps: int, warmup_steps: int = 0,
                  decay_at: Sequence[float] = (0.5, 0.65, 0.8),
                  decay_factor: float = 0.15) -> optax.Schedule:
  """Learning rate per step.

  Args:
    kind: 'constant', 'step' (multiply by decay_factor at each fraction in decay_at of
      total_steps) or 'cosine' (to 0 at total_steps).
    learning_rate: peak learning rate.
    total_steps: steps of the whole run (warm-up included).
    warmup_steps: linear warm-up from 0 over this many steps.
  """
  if kind not in SCHEDULES:
    raise unknown_choice("train.schedule", kind, SCHEDULES)
  main_steps = max(1, total_steps - warmup_steps)
  if kind == "constant":
    main = optax.constant_schedule(learning_rate)
  elif kind == "step":
    boundaries = {int(round(f * total_steps)) - warmup_steps: decay_factor for f in decay_at}
    main = optax.piecewise_constant_schedule(learning_rate, boundaries)
  else:
    main = optax.cosine_decay_schedule(learning_rate, main_steps)
  if warmup_steps <= 0:
    return main
  warmup = optax.linear_schedule(0.0, learning_rate, warmup_steps)
  return optax.join_schedules([warmup, main], [warmup_steps])


def make_optimizer(name: str, learning_rate, momentum: float = 0.9,
                   weight_decay: float = 0.0) -> optax.GradientTransformation:
  """'sgd' (heavy-ball momentum, L2 weight decay added to the gradient, as torch.optim.SGD),
  'adam' (L2 weight decay added to the gradient, as torch.optim.Adam) or 'adamw' (decoupled
  weight decay)."""
  if name not in OPTIMIZERS:
    raise unknown_choice("train.optimizer", name, OPTIMIZERS)
  if name == "adamw":
    return optax.adamw(learning_rate, weight_decay=weight_decay)
  base = (optax.sgd(learning_rate, momentum=momentum or None) if name == "sgd"
          else optax.adam(learning_rate))
  if weight_decay:
    return optax.chain(optax.add_decayed_weights(weight_decay), base)
  return base


def init_variables(model: nn.Module, key, image_shape_HWC):
  """(params, batch_stats) of `model` for images of shape image_shape_HWC."""
  variables = model.init(key, jnp.zeros((1, *image_shape_HWC), jnp.float32), train=False)
  return variables["params"], variables.get("batch_stats", {})


def new_state(params, batch_stats, masks, tx: optax.GradientTransformation) -> TrainState:
  """A fresh TrainState at step 0: masked params and a new masked optimizer state.

  All leaves are fresh copies, so donating the state to the train step never invalidates the
  caller's params, batch stats or masks (e.g. theta_0 reused for rewinding).
  """
  params = masks_lib.apply_masks(params, masks)
  return TrainState(step=jnp.zeros((), jnp.int32), params=params,
                    batch_stats=jax.tree.map(jnp.copy, batch_stats),
                    opt_state=masks_lib.masked_optimizer(tx, masks).init(params),
                    masks=jax.tree.map(jnp.copy, masks))


def _forward(model, params, batch_stats, images, train):
  variables = {"params": params}
  if batch_stats:
    variables["batch_stats"] = batch_stats
    if train:
      logits, updates = model.apply(variables, images, train=True, mutable=["batch_stats"])
      return logits, updates["batch_stats"]
  return model.apply(variables, images, train=train), batch_stats


def cross_entropy(logits_BxC, labels_B):
  """Mean softmax cross-entropy."""
  return optax.softmax_cross_entropy_with_integer_labels(logits_BxC, labels_B).mean()


def train_step(state: TrainState, batch, key, *, model: nn.Module,
               tx: optax.GradientTransformation, schedule: optax.Schedule | None = None,
               crop_padding: int = 0, flip: bool = False):
  """One masked update with `masks.masked_optimizer(tx)` (`tx` is the bare optimizer).

  Args:
    state: the TrainState.
    batch: {'image': float32 (B, H, W, C), 'label': int32 (B,)}.
    key: the run's training key; step s uses fold_in(key, s) for augmentation.

  Returns:
    (new state, metrics: loss, accuracy, grad_norm, update_norm, param_norm, learning_rate).
  """
  step_key = jax.random.fold_in(key, state.step)
  images = augment_lib.crop_and_flip(step_key, batch["image"], crop_padding, flip)

  def loss_fn(params):
    logits, new_stats = _forward(model, params, state.batch_stats, images, train=True)
    return cross_entropy(logits, batch["label"]), (logits, new_stats)

  (loss, (logits, new_stats)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
  grads = masks_lib.apply_masks(grads, state.masks)  # For grad_norm; the optimizer masks too.
  # state.masks is the source of truth (opt_state carries a copy for outside use). Pruned
  # params start at zero (new_state) and get zero updates; the last apply_masks only keeps
  # XLA's fusion, hence the rounding, as it was before masked_optimizer.
  masked_tx = masks_lib.masked_optimizer(tx, state.masks)
  updates, opt_state = masked_tx.update(grads, state.opt_state._replace(masks=state.masks),
                                        state.params)
  params = masks_lib.apply_masks(optax.apply_updates(state.params, updates), state.masks)
  metrics = {
      "loss": loss,
      "accuracy": jnp.mean(jnp.argmax(logits, -1) == batch["label"]),
      "grad_norm": tree.norm(grads),
      "update_norm": tree.norm(updates),
      "param_norm": tree.norm(params),
  }
  if schedule is not None:
    metrics["learning_rate"] = schedule(state.step)
  new_state = state.replace(step=state.step + 1, params=params, batch_stats=new_stats,
                            opt_state=opt_state)
  return new_state, metrics


def make_train_step(model, tx, schedule=None, crop_padding=0, flip=False):
  """`train_step` with its static pieces bound, jitted once, state donated."""
  return jax.jit(functools.partial(train_step, model=model, tx=tx, schedule=schedule,
                                   crop_padding=crop_padding, flip=flip),
                 donate_argnums=0)


def _eval_sums(params, batch_stats, images, labels, weights, *, model):
  logits, _ = _forward(model, params, batch_stats, images, train=False)
  losses = optax.softmax_cross_entropy_with_integer_labels(logits, labels)
  correct = (jnp.argmax(logits, -1) == labels).astype(jnp.float32)
  return jnp.sum(losses * weights), jnp.sum(correct * weights)


def make_eval_step(model):
  """Jitted (params, batch_stats, images, labels, weights) -> (sum of losses, sum correct)."""
  return jax.jit(functools.partial(_eval_sums, model=model))


def evaluate(eval_step, params, batch_stats, images, labels, batch_size: int = 1000,
             mesh=None) -> dict:
  """{'loss': mean cross-entropy, 'accuracy': mean accuracy} over all of (images, labels).

  The last batch is zero-padded to the batch size (weight 0), so every batch has one shape
  and the step compiles once.
  """
  mesh = parallel.data_mesh() if mesh is None else mesh
  n = len(labels)
  batch_size = min(batch_size, n)
  batch_size += -batch_size % mesh.devices.size
  params, batch_stats = parallel.replicate((params, batch_stats), mesh)
  loss_sum = correct_sum = 0.0
  for start in range(0, n, batch_size):
    x = np.asarray(images[start:start + batch_size])
    y = np.asarray(labels[start:start + batch_size])
    w = np.ones(len(y), np.float32)
    pad = batch_size - len(y)
    if pad:
      x = np.concatenate([x, np.zeros((pad, *x.shape[1:]), x.dtype)])
      y = np.concatenate([y, np.zeros(pad, y.dtype)])
      w = np.concatenate([w, np.zeros(pad, np.float32)])
    batch = parallel.shard_batch((x, y, w), mesh)
    loss, correct = eval_step(params, batch_stats, *batch)
    loss_sum += float(loss)
    correct_sum += float(correct)
  return {"loss": loss_sum / n, "accuracy": correct_sum / n}


def fit(state: TrainState, step_fn: Callable, images, labels, *, num_steps: int,
        batch_size: int, data_key, train_key, mesh=None, checkpoint_dir: str | None = None,
        checkpoint_every: int = 1000, log_every: int = 50, metrics_log=None,
        desc: str = "train", log_fields: dict | None = None) -> TrainState:
  """Train `state` to `num_steps` steps, resuming from the newest checkpoint in
  `checkpoint_dir` if there is one.

  Batches are a pure function of (data_key, step) and augmentation of (train_key, step), so a
  resumed run computes exactly what an uninterrupted one would. Metrics are read back every
  `log_every` steps (and before every checkpoint): a NaN or Inf loss raises TrainingDiverged
  naming the step and the newest checkpoint, which is always from before the divergence.

  Args:
    state: the initial TrainState (also the template for restoring).
    step_fn: a jitted `train_step` (see make_train_step).
    images, labels: host arrays of the whole training set.
    num_steps: total number of steps of the run.
    metrics_log: a rundir.MetricsLog (optional); `log_fields` are added to each record.

  Returns:
    the trained state (replicated on the mesh; with several processes, host-local arrays,
    the same in every process).
  """
  mesh = parallel.mesh_for_batch(min(batch_size, len(labels)),
                                 parallel.data_mesh() if mesh is None else mesh)
  state = parallel.replicate(state, mesh)
  mngr = ckpt_lib.manager(checkpoint_dir) if checkpoint_dir else None
  if mngr is not None:
    restored, restored_step = ckpt_lib.restore_latest(mngr, state)
    if restored is not None:
      state = restored
      if restored_step < num_steps:
        log.info("%s: resumed from checkpoint at step %d", desc, restored_step)
  start = int(state.step)
  last_good = mngr.latest_step() if mngr is not None else None
  order = EpochCache(data_key, len(labels), batch_size)
  pending = []  # (step, metrics on device) not yet checked on the host.
  bar = tqdm(total=num_steps, initial=start, desc=desc, dynamic_ncols=True, leave=False,
             disable=None if parallel.is_writer() else True, file=sys.stderr)

  def diverged(step, what, value):
    where = (f"last good checkpoint: step {last_good} in {checkpoint_dir}"
             if last_good is not None else "no checkpoint was saved")
    return TrainingDiverged(f"{desc}: training diverged at step {step}: {what} is {value}; "
                            f"{where}; lower the learning rate")

  def flush(step):
    nonlocal pending
    host = jax.device_get([m for _, m in pending])
    for (s, _), m in zip(pending, host):
      bad = non_finite_metric(m)
      if bad is not None:
        raise diverged(s + 1, *bad)
    mean = {k: float(np.mean([m[k] for m in host])) for k in host[0]}
    pending = []
    if metrics_log is not None:
      metrics_log.write(event="train", stage=desc, step=step, **mean, **(log_fields or {}))
    if bar.disable and parallel.is_writer():
      log.info("%s step %d/%d: loss %.4f accuracy %.4f", desc, step, num_steps,
                   mean["loss"], mean["accuracy"])
    bar.set_postfix(loss=f"{mean['loss']:.4f}", acc=f"{mean['accuracy']:.3f}")

  try:
    for step in range(start, num_steps):
      batch = parallel.gather_batch({"image": images, "label": labels}, order.indices(step),
                                    mesh)
      state, metrics = step_fn(state, batch, train_key)
      pending.append((step, metrics))
      done = step + 1
      bar.update(1)
      save_now = mngr is not None and (done % checkpoint_every == 0 or done == num_steps)
      if done % log_every == 0 or save_now or done == num_steps:
        flush(done)
      if save_now:
        if not bool(all_finite((state.params, state.batch_stats))):
          raise diverged(done, "a parameter or BatchNorm statistic", "not finite")
        ckpt_lib.save(mngr, done, state)
        last_good = done
  finally:
    bar.close()
  return parallel.to_host_local(state)
