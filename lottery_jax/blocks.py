"""Training in blocks on the device: the train split stays on the device and one dispatch runs
up to K steps of the jitted train step.

A block is a `lax.fori_loop` over steps whose trip count is an argument, so blocks of every
length share one compilation. Step s reads rows `indices[s]` of the train split on the device,
the very rows `data.batching` gives the host loop (the host computes them, as before, from
(data key, epoch)), so the batch order is today's for the same seeds. Metrics come back
stacked over the block's steps, and the host loop (host_loop.loop) reads them back and
flushes them exactly as it does step by step.

Where it pays: a block saves a dispatch, a host-side gather and a host-to-device copy per
step, which matter on an accelerator (bench/README.md: `train.fit` took twice the bare step on
an H200). On XLA:CPU a convolution inside a loop body runs far slower than in its own jitted
call (ConvNet-3 width 32 on 32x32x3, batch 256: the block ran ~30x slower, bench/README.md
"Training in blocks"), and the loop body compiles differently from the step (last-bit
differences from the first update on), so 'auto' keeps the step loop on CPU, whose results
stay bit-identical to those of earlier versions.
"""

from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from lottery_jax import parallel
from lottery_jax.errors import unknown_choice

LOOPS = ("auto", "step", "block")
DEFAULT_BLOCK_STEPS = 200
# Backends on which 'auto' trains in blocks (see the module docstring). None yet: blocks have
# not been measured on an accelerator (experiments/accelerator/paper_fig3.sh times them first;
# add a backend here once bench/README.md shows them faster there). train.loop='block' asks.
BLOCK_BACKENDS: tuple[str, ...] = ()


def use_blocks(loop: str, backend: str | None = None) -> bool:
  """Whether `loop` ('auto', 'step' or 'block') trains in blocks on `backend` (default: JAX's
  default backend); 'auto' is 'block' on BLOCK_BACKENDS (none yet) and 'step' elsewhere."""
  loop = str(loop).lower()
  if loop not in LOOPS:
    raise unknown_choice("train.loop", loop, LOOPS)
  if loop == "auto":
    return (backend or jax.default_backend()) in BLOCK_BACKENDS
  return loop == "block"


def block_ranges(start: int, num_steps: int, block_steps: int,
                 boundary_every: int | None = None) -> list[tuple[int, int]]:
  """[begin, end) step ranges from `start` to `num_steps`, each at most `block_steps` long and
  never crossing a multiple of `boundary_every` (checkpoint steps), so every checkpoint falls
  on a block boundary."""
  ranges, begin = [], start
  while begin < num_steps:
    end = min(num_steps, begin + max(1, block_steps))
    if boundary_every:
      end = min(end, (begin // boundary_every + 1) * boundary_every)
    ranges.append((begin, end))
    begin = end
  return ranges


def make_block_step(step_fn: Callable, block_steps: int, batch_sharding=None) -> Callable:
  """jit((state, data, indices_KxB, num, key) -> (state, metrics)), state donated: steps 0 ..
  num - 1 of `step_fn(state, {name: data[name][indices[i]]}, key)` with K = block_steps, num
  <= K. Metrics have a leading axis of K (entries from num on are zeros). `step_fn` may be
  jitted (it is inlined); `batch_sharding` places each gathered batch (the 'data' axis of a
  mesh)."""

  def gather(data, rows):
    batch = {name: jnp.take(x, rows, axis=0) for name, x in data.items()}
    if batch_sharding is not None:
      batch = lax.with_sharding_constraint(batch, batch_sharding)
    return batch

  def block(state, data, indices, num, key):
    shapes = jax.eval_shape(lambda: step_fn(state, gather(data, indices[0]), key)[1])
    buffers = jax.tree.map(lambda s: jnp.zeros((block_steps, *s.shape), s.dtype), shapes)

    def body(i, carry):
      state, buffers = carry
      state, metrics = step_fn(state, gather(data, indices[i]), key)
      buffers = jax.tree.map(lambda b, m: b.at[i].set(m), buffers, metrics)
      return state, buffers

    return lax.fori_loop(0, num, body, (state, buffers))

  return jax.jit(block, donate_argnums=0)


_BLOCK_STEPS: dict = {}  # (id(step_fn), block_steps, sharding) -> (step_fn, block step).


def block_step_for(step_fn: Callable, block_steps: int, batch_sharding=None) -> Callable:
  """`make_block_step`, built once per step function (a recipe's rounds share it)."""
  key = (id(step_fn), block_steps, batch_sharding)
  if key not in _BLOCK_STEPS or _BLOCK_STEPS[key][0] is not step_fn:
    _BLOCK_STEPS[key] = (step_fn, make_block_step(step_fn, block_steps, batch_sharding))
  return _BLOCK_STEPS[key][1]


def block_indices(order, begin: int, end: int, block_steps: int) -> np.ndarray:
  """int32 (block_steps, B): the host loop's rows of steps begin .. end - 1 (`order` an
  EpochCache), padded with zeros."""
  rows = np.stack([order.indices(s) for s in range(begin, end)]).astype(np.int32)
  return np.concatenate([rows, np.zeros((block_steps - len(rows), rows.shape[1]), np.int32)])


def device_data(arrays: dict, mesh) -> dict:
  """The train split on every device of `mesh` (each device gathers its batches from it)."""
  return parallel.replicate({name: np.asarray(x) for name, x in arrays.items()}, mesh)


def run_block(block_fn: Callable, state, data, indices, num: int, key):
  """One dispatch of a block step (the seam where tests interrupt a run mid-block)."""
  return block_fn(state, data, indices, np.int32(num), key)
