"""Masked training: the train state, one pure jitted step, and `fit`, the step driven by
`host_loop.run` over batches of the training set (lottery_jax.optim makes the optimizers,
lottery_jax.loss the forward pass, loss and evaluation).

Pruned weights stay exactly zero: the optimizer is wrapped in `masks.masked_optimizer`, whose
updates are zero on pruned weights, so SGD momentum, Adam moments and weight decay never revive
them.
"""

import functools
from typing import Any, Callable

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from lottery_jax import blocks
from lottery_jax import host_loop
from lottery_jax import loss as loss_lib
from lottery_jax import masks as masks_lib
from lottery_jax import parallel
from lottery_jax import tree
from lottery_jax.data import augment as augment_lib
from lottery_jax.data.batching import EpochCache
from lottery_jax.errors import unknown_choice


@flax.struct.dataclass
class TrainState:
  """Everything that changes during training, as one pytree.

  Attributes:
    step: int32 scalar, number of updates applied so far.
    params: the model's parameters.
    batch_stats: BatchNorm running statistics ({} for models without BatchNorm).
    opt_state: a masks.MaskedState: the masks (bool tree mirroring params, True where a
      weight is kept; their one home, as jaxpruner keeps them in its optimizer state) and the
      wrapped optimizer's state. `state.masks` reads them.
  """
  step: jax.Array
  params: Any
  batch_stats: Any
  opt_state: Any

  @property
  def masks(self):
    """The bool masks, True where a weight is kept (held by opt_state, a MaskedState)."""
    return self.opt_state.masks


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
                    opt_state=masks_lib.masked_optimizer(tx, masks).init(params))


def compute_params(params, compute_dtype: str):
  """`params` with every floating leaf cast to `compute_dtype` (unchanged for 'float32')."""
  if compute_dtype == "float32":
    return params
  dtype = jnp.dtype(compute_dtype)
  return jax.tree.map(lambda x: x.astype(dtype) if jnp.issubdtype(x.dtype, jnp.floating)
                      else x, params)


def train_step(state: TrainState, batch, key, *, model: nn.Module,
               tx: optax.GradientTransformation, schedule: optax.Schedule | None = None,
               crop_padding: int = 0, flip: bool = False, compute_dtype: str = "float32",
               augment: augment_lib.RealAugmentation = augment_lib.RealAugmentation()):
  """One masked update with `masks.masked_optimizer(tx)` (`tx` is the bare optimizer).

  Args:
    state: the TrainState.
    batch: {'image': float32 (B, H, W, C), 'label': int32 (B,)}.
    key: the run's training key; step s uses fold_in(key, s) for augmentation.
    crop_padding, flip: the 'crop_flip' augmentation's random crop and flip.
    augment: the augmentation's kind and CutMix (data.augment, data.cutmix_*); with CutMix
      the loss is loss.mixed_cross_entropy and the accuracy is against the examples' own
      labels.
    compute_dtype: 'float32', or 'bfloat16' for the forward and backward passes (activations,
      convolutions and matmuls; normalisation statistics stay float32 in flax) on float32
      master weights: the loss, gradients, optimizer state and updates stay float32, so
      pruned weights stay exactly zero.

  Returns:
    (new state, metrics: loss, accuracy, grad_norm, update_norm, param_norm, learning_rate).
  """
  step_key = jax.random.fold_in(key, state.step)
  images, labels_a, labels_b, lam = augment_lib.augment_batch(
      step_key, batch["image"], batch["label"], augment, crop_padding, flip)

  def objective(logits):
    if augment.cutmix_prob == 0:
      return loss_lib.cross_entropy(logits, batch["label"])
    return loss_lib.mixed_cross_entropy(logits, labels_a, labels_b, lam)

  def loss_fn(params):
    if compute_dtype == "float32":
      logits, new_stats = loss_lib.forward(model, params, state.batch_stats, images,
                                           train=True)
    else:
      logits, new_stats = loss_lib.forward(
          model, compute_params(params, compute_dtype), state.batch_stats,
          images.astype(compute_dtype), train=True)
      logits = logits.astype(jnp.float32)
      new_stats = jax.tree.map(lambda n, o: n.astype(o.dtype), new_stats, state.batch_stats)
    return objective(logits), (logits, new_stats)

  (loss, (logits, new_stats)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
  masks = state.masks  # Held by the optimizer state (its update reads them from there).
  grads = masks_lib.apply_masks(grads, masks)  # For grad_norm; the optimizer masks too.
  # Pruned params start at zero (new_state) and get zero updates; the last apply_masks only
  # keeps XLA's fusion, hence the rounding, as it was before masked_optimizer.
  masked_tx = masks_lib.masked_optimizer(tx, masks)
  updates, opt_state = masked_tx.update(grads, state.opt_state, state.params)
  params = masks_lib.apply_masks(optax.apply_updates(state.params, updates), masks)
  metrics = {
      "loss": loss,
      "accuracy": loss_lib.accuracy(logits, batch["label"]),
      "grad_norm": tree.norm(grads),
      "update_norm": tree.norm(updates),
      "param_norm": tree.norm(params),
  }
  if schedule is not None:
    metrics["learning_rate"] = schedule(state.step)
  new_state = state.replace(step=state.step + 1, params=params, batch_stats=new_stats,
                            opt_state=opt_state)
  return new_state, metrics


COMPUTE_DTYPES = ("float32", "bfloat16")


def make_train_step(model, tx, schedule=None, crop_padding=0, flip=False,
                    compute_dtype="float32", augment=None):
  """`train_step` with its static pieces bound, jitted once, state donated (`augment`: a
  data.augment.RealAugmentation, None: crop_padding / flip only)."""
  if compute_dtype not in COMPUTE_DTYPES:
    raise unknown_choice("train.compute_dtype", compute_dtype, COMPUTE_DTYPES)
  extra = {} if compute_dtype == "float32" else {"compute_dtype": compute_dtype}
  if augment is not None:
    extra["augment"] = augment
  return jax.jit(functools.partial(train_step, model=model, tx=tx, schedule=schedule,
                                   crop_padding=crop_padding, flip=flip, **extra),
                 donate_argnums=0)


def fit(state: TrainState, step_fn: Callable, images, labels, *, num_steps: int,
        batch_size: int, data_key, train_key, mesh=None, checkpoint_dir: str | None = None,
        checkpoint_every: int = 1000, log_every: int = 50, metrics_log=None,
        desc: str = "train", log_fields: dict | None = None, loop: str = "auto",
        block_steps: int = blocks.DEFAULT_BLOCK_STEPS) -> TrainState:
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
    loop: 'step' (one dispatch per step, the batch gathered on the host), 'block' (the train
      split on the device, blocks of up to `block_steps` steps per dispatch, checkpoints at
      block boundaries: lottery_jax.blocks) or 'auto' (steps, until blocks are measured
      faster on a backend: blocks.BLOCK_BACKENDS).

  Returns:
    the trained state (replicated on the mesh; with several processes, host-local arrays,
    the same in every process).
  """
  mesh = parallel.mesh_for_batch(min(batch_size, len(labels)),
                                 parallel.data_mesh() if mesh is None else mesh)
  order = EpochCache(data_key, len(labels), batch_size)
  arrays = {"image": images, "label": labels}

  def advance(state, step):
    batch = parallel.gather_batch(arrays, order.indices(step), mesh)
    return step_fn(state, batch, train_key)

  block_kw = {}
  if blocks.use_blocks(loop):
    data = blocks.device_data(arrays, mesh)
    block_fn = blocks.block_step_for(step_fn, block_steps, parallel.batch_sharding(mesh))
    indices_sharding = parallel.replicated(mesh)

    def advance_block(state, begin, end):
      indices = jax.device_put(blocks.block_indices(order, begin, end, block_steps),
                               indices_sharding)
      return blocks.run_block(block_fn, state, data, indices, end - begin, train_key)

    block_kw = dict(advance_block=advance_block, block_steps=block_steps)
  state = host_loop.run(parallel.replicate(state, mesh), advance, num_steps=num_steps,
                        desc=desc, checkpoint_dir=checkpoint_dir,
                        checkpoint_every=checkpoint_every, log_every=log_every,
                        metrics_log=metrics_log, event="train", log_fields=log_fields,
                        finite_state=lambda s: host_loop.all_finite((s.params, s.batch_stats)),
                        **block_kw)
  return parallel.to_host_local(state)
