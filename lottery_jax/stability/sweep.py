"""Evaluate one model at many parameter points: the engine under LMC paths and landscapes.

A *sweep* is a family of parameter trees `point_fn(base, point)`, one per entry of a stacked
`points_P` array (an alpha on an interpolation path, an (a, b) coordinate on a plane). The data
are fed in fixed-shape chunks from a Python loop; inside one jitted call per chunk, the points
are mapped on device with `jax.lax.map(..., batch_size=point_batch)`:

  point_batch=None  one point after another (a scan): the peak memory of one forward pass on
                    one chunk; fastest on CPU, where vmapped kernels become grouped convolutions.
  point_batch=k     k points at a time through `jax.vmap` (peak memory ~ k x one pass): can help
                    accelerators when chunks are small.

`point_fn` must be a module-level (hashable) function so that the jitted calls are cached.

BatchNorm. Evaluation uses running statistics. Running statistics of the endpoints are wrong
for points between or beside them, so `recompute_stats` re-estimates them at every point on a
fixed set of training images (`bn_images`): each chunk of `bn_images` goes through the network
in training mode at that point, and the statistics are the average over chunks of each chunk's
batch mean and (biased, as flax computes it) batch variance of every BatchNorm input (the
cumulative average of PyTorch's `torch.optim.swa_utils.update_bn`, momentum=None). flax only
exposes statistics through its momentum update `new = m * old + (1 - m) * batch`, so the network
is run from all-zero statistics and the result divided by (1 - m); m is measured once per call
by running one chunk from all-zero and from all-one statistics (new_one - new_zero = m), which
works whatever momentum each BatchNorm layer was built with.
"""

import functools
import logging
import time
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from lottery_jax import loss as loss_lib
from lottery_jax import parallel
from lottery_jax import tree
from lottery_jax.errors import UserInputError
from lottery_jax.stability import budget as budget_lib

log = logging.getLogger(__name__)
# A sweep running longer than this logs how many of its chunks are done, this often.
PROGRESS_EVERY_S = 30.0

PointFn = Callable[[Any, jax.Array], Any]


def has_batch_stats(batch_stats) -> bool:
  """True when `batch_stats` holds any array (the model has BatchNorm)."""
  return batch_stats is not None and bool(jax.tree.leaves(batch_stats))


def num_logits(model, params, batch_stats, images) -> int:
  """C, the number of logits `model` gives per image of `images` (shapes only: nothing runs)."""
  example = jax.ShapeDtypeStruct((1, *np.shape(images)[1:]), jnp.result_type(images))
  stats = batch_stats if has_batch_stats(batch_stats) else None
  logits = jax.eval_shape(lambda p, s, x: loss_lib.forward(model, p, s, x, train=False)[0],
                          params, stats, example)
  return int(logits.shape[-1])


def check_examples(images, labels) -> None:
  """UserInputError unless images (N, ...) and labels int (N,) pair one label with each image
  (static: works on traced arrays). Otherwise extra images would be silently left out."""
  shape, dtype = np.shape(labels), jnp.result_type(labels)
  if len(shape) != 1 or not jnp.issubdtype(dtype, jnp.integer):
    hint = " (one-hot? pass labels.argmax(-1))" if len(shape) == 2 else ""
    raise UserInputError(f"labels must be integer class labels of shape (N,), got {dtype} "
                         f"{shape}{hint}")
  image_shape = np.shape(images)
  if len(image_shape) < 2 or image_shape[0] != shape[0]:
    raise UserInputError(f"images {image_shape} and labels {shape} must have the same "
                         "leading dimension N: one label per image, images (N, H, W, C)")


def check_evaluation_set(model, params, batch_stats, images, labels) -> None:
  """`check_examples`, and every (concrete) label a class index of `model` at `params`, in
  [0, C) for C logits: an out-of-range label would give a NaN loss and a wrong accuracy."""
  check_examples(images, labels)
  values = np.asarray(labels)
  if not values.size:
    return
  num_classes = num_logits(model, params, batch_stats, images)
  low, high = int(values.min()), int(values.max())
  if low < 0 or high >= num_classes:
    raise UserInputError(f"labels must be class indices in [0, {num_classes}) for a model "
                         f"with {num_classes} logits, got labels from {low} to {high}")


def select_params(params, point):
  """Point function of a single parameter tree: `params` whatever the point."""
  del point
  return params


@functools.partial(jax.jit, static_argnames=("model", "point_fn", "point_batch"))
def _chunk_sums(base, points_P, stats_P, images, labels, weights, *, model, point_fn,
                point_batch):
  """(loss_sum_P, correct_sum_P): weighted sums over one data chunk at every point."""

  def at_point(point_and_stats):
    point, stats = point_and_stats
    logits, _ = loss_lib.forward(model, point_fn(base, point), stats, images, train=False)
    return loss_lib.weighted_sums(logits, labels, weights)

  return jax.lax.map(at_point, (points_P, stats_P), batch_size=point_batch)


@functools.partial(jax.jit, static_argnames=("model", "point_fn", "point_batch"))
def _chunk_stats(base, points_P, template, decay, images, *, model, point_fn, point_batch):
  """Batch statistics of one chunk at every point: a tree like `template`, leading axis P."""
  zeros = jax.tree.map(jnp.zeros_like, template)

  def at_point(point):
    _, new = loss_lib.forward(model, point_fn(base, point), zeros, images, train=True)
    return jax.tree.map(jnp.divide, new, decay)

  return jax.lax.map(at_point, points_P, batch_size=point_batch)


_tree_sum = jax.jit(tree.add)  # a + b leaf by leaf, as one computation.


@functools.partial(jax.jit, static_argnames=("model",))
def _stats_decay(params, template, images, *, model):
  """(1 - momentum) of every running-statistics entry, a tree like `template`."""

  def updated(value):
    start = jax.tree.map(lambda s: jnp.full_like(s, value), template)
    return loss_lib.forward(model, params, start, images, train=True)[1]

  return jax.tree.map(lambda zero, one: 1.0 - (one - zero), updated(0.0), updated(1.0))


def _chunk_size(requested: int, n: int, num_devices: int) -> int:
  size = max(1, min(int(requested), n))
  return size + (-size % num_devices)


def _within_budget(model, point_fn, base, points_P, stats, image_shape, n, chunk_size,
                   point_batch, train, memory_budget_gb, num_devices):
  """(chunk_size, point_batch) shrunk so one call stays within the memory budget (see
  budget.plan); per device, as each device holds chunk / num_devices examples. In training
  mode (BatchNorm recomputation) the chunk is part of the statistic, so only point_batch
  shrinks there."""
  params = jax.eval_shape(point_fn, base, jax.tree.map(lambda p: p[0], points_P))
  per_example = budget_lib.activation_bytes_per_example(model, params, stats, image_shape,
                                                        train=train)
  limit = budget_lib.budget_bytes(memory_budget_gb)
  per_device = max(1, min(int(chunk_size), n) // num_devices)
  chunk, block = budget_lib.plan(per_example, budget_lib.tree_bytes(params), n, per_device,
                                 point_batch, limit)
  if train:
    chunk = per_device
    if budget_lib.peak_bytes(per_example, 0, chunk, None) > limit:
      log.warning("BatchNorm recomputation on chunks of %d examples needs ~%.1f GiB per call, "
                  "over the %.1f GiB budget; lower stability.chunk_size", chunk,
                  chunk * per_example / budget_lib.GIB, limit / budget_lib.GIB)
  log.debug("sweep: %s", budget_lib.describe(per_example, chunk, block, limit))
  return (chunk * num_devices if chunk < per_device else chunk_size), block


def recompute_stats(model, point_fn: PointFn, base, points_P, batch_stats, bn_images, *,
                    chunk_size: int = 500, point_batch: int | None = None, mesh=None,
                    memory_budget_gb: float | None = None):
  """BatchNorm running statistics re-estimated on `bn_images` at every point.

  Args:
    model: the flax module (with BatchNorm).
    point_fn, base, points_P: the points, params = point_fn(base, points_P[i]).
    batch_stats: a batch_stats tree of the model (its structure and dtypes are used, not its
      values).
    bn_images: float32 (N, H, W, C) training images. They are used in floor(N / chunk) full
      chunks of `chunk_size` (N when smaller), rounded up to a multiple of the device count; a
      remainder is dropped, so pass a multiple of chunk_size.
    memory_budget_gb: peak memory of one call (see `budget`); point_batch, then the chunk,
      shrink to fit it. None or 0: the automatic budget.

  Returns:
    stats_P: a tree like batch_stats whose leaves have a leading axis of len(points_P).
  """
  loss_lib.check_model(model)
  mesh = parallel.data_mesh() if mesh is None else mesh
  bn_images = np.asarray(bn_images)
  n = len(bn_images)
  chunk_size, point_batch = _within_budget(model, point_fn, base, points_P, batch_stats,
                                           bn_images.shape[1:], n, chunk_size, point_batch,
                                           True, memory_budget_gb, mesh.devices.size)
  size = _chunk_size(chunk_size, n, mesh.devices.size)
  if n < size:
    raise UserInputError(f"BatchNorm recomputation needs at least {size} bn_images "
                         f"(one chunk split over {mesh.devices.size} device(s)), got {n}")
  num_chunks = n // size
  base, points_P = parallel.replicate((base, jnp.asarray(points_P)), mesh)
  template = parallel.replicate(batch_stats, mesh)
  first = parallel.shard_batch(bn_images[:size], mesh)
  decay = _stats_decay(point_fn(base, points_P[0]), template, first, model=model)
  if not all(bool(jnp.all(d > 0)) for d in jax.tree.leaves(decay)):
    raise UserInputError("a BatchNorm layer has momentum 1 (frozen statistics); its batch "
                         "statistics cannot be recomputed")
  total = None
  for c in range(num_chunks):
    chunk = first if c == 0 else parallel.shard_batch(bn_images[c * size:(c + 1) * size], mesh)
    stats = _chunk_stats(base, points_P, template, decay, chunk, model=model,
                         point_fn=point_fn, point_batch=point_batch)
    # One jitted sum, waited for: never more than a few computations in flight per device
    # (host_loop.MAX_STEPS_AHEAD says why that matters with several processes).
    total = stats if total is None else jax.block_until_ready(_tree_sum(total, stats))
  return jax.tree.map(lambda t: t / num_chunks, total)


def recompute_batch_stats(model, params, batch_stats, bn_images, *, chunk_size: int = 500,
                          mesh=None):
  """BatchNorm statistics of one parameter tree re-estimated on `bn_images` (a tree like
  `batch_stats`); see `recompute_stats` and the module docstring for what is computed."""
  stats_1 = recompute_stats(model, select_params, params, jnp.zeros((1,), jnp.float32),
                            batch_stats, bn_images, chunk_size=chunk_size, mesh=mesh)
  return jax.tree.map(lambda s: s[0], stats_1)


def evaluate_points(model, point_fn: PointFn, base, points_P, images, labels, *,
                    stats_P=None, chunk_size: int = 500, point_batch: int | None = None,
                    mesh=None, memory_budget_gb: float | None = None) -> dict[str, np.ndarray]:
  """Mean cross-entropy and accuracy over all of (images, labels) at every point.

  Args:
    model: the flax module, evaluated with train=False, or apply_fn(params, images) -> logits
      (see `lottery_jax.stability`, "The model").
    point_fn, base, points_P: params at point i are point_fn(base, points_P[i]); points_P is an
      array (or pytree of arrays) with a leading axis P.
    images, labels: float32 (N, H, W, C) and int (N,) host arrays. They are fed in chunks of
      `chunk_size` (rounded up to a multiple of the device count; N when smaller) split over
      the mesh; the last chunk is zero-padded with weight 0, so every call compiles once.
    stats_P: BatchNorm running statistics per point (leading axis P), None without BatchNorm.
    point_batch: points per vmapped block inside `jax.lax.map`; None maps one at a time.
    memory_budget_gb: peak memory of one call (see `budget`); point_batch, then chunk_size,
      shrink to fit it. None or 0: the automatic budget.

  Returns:
    {'loss_P': float64 (P,), 'accuracy_P': float64 (P,)}.
  """
  loss_lib.check_model(model)
  mesh = parallel.data_mesh() if mesh is None else mesh
  n = len(labels)
  if n == 0:
    raise UserInputError("no examples to evaluate")
  stats_P = {} if stats_P is None else stats_P
  stats_0 = jax.tree.map(lambda s: s[0], stats_P) if has_batch_stats(stats_P) else None
  chunk_size, point_batch = _within_budget(model, point_fn, base, points_P, stats_0,
                                           np.shape(images)[1:], n, chunk_size, point_batch,
                                           False, memory_budget_gb, mesh.devices.size)
  size = _chunk_size(chunk_size, n, mesh.devices.size)
  base, points_P, stats_P = parallel.replicate((base, points_P, stats_P), mesh)
  sums, chunks = [], -(-n // size)
  began = last = time.monotonic()
  for i, batch in enumerate(loss_lib.padded_batches(images, labels, size)):
    chunk = parallel.shard_batch(batch, mesh)
    sums.append(_chunk_sums(base, points_P, stats_P, *chunk, model=model, point_fn=point_fn,
                            point_batch=point_batch))
    jax.block_until_ready(sums[-1])  # Count what is done, not what is dispatched.
    if time.monotonic() - last >= PROGRESS_EVERY_S:
      last = time.monotonic()
      log.info("sweep of %d points on %d examples: %d of %d chunks in %.0f s",
                 len(jax.tree.leaves(points_P)[0]), n, i + 1, chunks, last - began)
  loss_sums, correct_sums = zip(*jax.device_get(sums))
  return {"loss_P": np.sum(np.asarray(loss_sums, np.float64), axis=0) / n,
          "accuracy_P": np.sum(np.asarray(correct_sums, np.float64), axis=0) / n}
