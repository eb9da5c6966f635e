"""The memory budget of the sweeps: how many points and examples go through one jitted call.

A sweep evaluates `point_batch` parameter points on `chunk` examples at once, so its peak
memory is about point_batch x (chunk x activation bytes per example + parameter bytes). The
activation bytes come from the model itself: `jax.eval_shape` of the forward pass with every
module's output captured (no compute), times a safety factor for the convolutions' workspace.
`plan` then shrinks the requested point_batch, then the chunk, until a call fits the budget.

The budget is `stability.memory_budget_gb` when positive; 0 means automatic: 4 GiB on a CPU,
half of the device's memory on an accelerator.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

GIB = 1 << 30
CPU_DEFAULT_GB = 4.0
# Module outputs are not the whole story: convolutions need workspace and XLA keeps some
# temporaries alive; peak memory measured against the module outputs' sum stays below this.
SAFETY = 3.0


def budget_bytes(memory_budget_gb: float | None = None) -> int:
  """The budget in bytes: `memory_budget_gb` GiB when positive, else the automatic one."""
  if memory_budget_gb and memory_budget_gb > 0:
    return int(memory_budget_gb * GIB)
  device = jax.local_devices()[0]
  if device.platform != "cpu":
    stats = device.memory_stats() or {}
    if stats.get("bytes_limit"):
      return int(stats["bytes_limit"]) // 2
  return int(CPU_DEFAULT_GB * GIB)


def tree_bytes(tree) -> int:
  """Bytes of all array leaves of `tree` (arrays or ShapeDtypeStructs)."""
  return int(sum(np.prod(x.shape) * np.dtype(x.dtype).itemsize for x in jax.tree.leaves(tree)))


def activation_bytes_per_example(model, params, batch_stats, image_shape_HWC,
                                 train: bool = False) -> int:
  """SAFETY x the bytes of every module output of one forward pass of one example, plus the
  example itself; computed with jax.eval_shape (shapes only, nothing runs). For a plain
  apply_fn(params, images) model: every intermediate value of its jaxpr."""
  image = jax.ShapeDtypeStruct((1, *image_shape_HWC), jnp.float32)
  if not isinstance(model, nn.Module):
    jaxpr = jax.make_jaxpr(model)(params, image)
    outs = [v.aval for eqn in jaxpr.eqns for v in eqn.outvars
            if hasattr(v.aval, "shape") and hasattr(v.aval, "dtype")]
    return int(SAFETY * tree_bytes(outs)) + tree_bytes(image)
  variables = {"params": params}
  mutable = ["intermediates"]
  if batch_stats is not None and jax.tree.leaves(batch_stats):
    variables["batch_stats"] = batch_stats
    if train:
      mutable.append("batch_stats")

  def forward(variables, x):
    return model.apply(variables, x, train=train, capture_intermediates=True, mutable=mutable)

  out = jax.eval_shape(forward, variables, image)
  return int(SAFETY * tree_bytes(out)) + tree_bytes(image)


def block_size(bytes_per_unit: int, budget: int, requested: int | None = None) -> int:
  """The largest k <= requested (unbounded if None) with k x bytes_per_unit <= budget; at
  least 1. E.g. probes per vmapped block of a Hessian estimate, given one probe's bytes."""
  k = max(1, budget // max(1, int(bytes_per_unit)))
  return k if requested is None else max(1, min(int(requested), k))


def plan(per_example: int, param_bytes: int, num_examples: int, chunk_size: int,
         point_batch: int | None, budget: int) -> tuple[int, int | None]:
  """(chunk, point_batch) with point_batch x (chunk x per_example + param_bytes) <= budget.

  The requested point_batch shrinks first (None stays None: one point at a time), then the
  chunk; a chunk is never below 1 example, so a model whose single example exceeds the budget
  runs one example at a time.
  """
  chunk = max(1, min(int(chunk_size), int(num_examples)))
  fits_one = max(1, (budget - param_bytes) // max(1, per_example))
  chunk = min(chunk, fits_one)
  if point_batch is None:
    return chunk, None
  k = block_size(chunk * per_example + param_bytes, budget, point_batch)
  return chunk, (None if k == 1 else k)


def peak_bytes(per_example: int, param_bytes: int, chunk: int, point_batch: int | None) -> int:
  """The estimate `plan` keeps within the budget, for one call."""
  return (point_batch or 1) * (chunk * per_example + param_bytes)


def describe(per_example: int, chunk: int, point_batch: int | None, budget: int) -> str:
  """One line for the log: the block chosen and why."""
  return (f"{point_batch or 1} point(s) x {chunk} examples per call, "
          f"~{per_example / 2**20:.1f} MiB per example-point, budget {budget / GIB:.1f} GiB")
