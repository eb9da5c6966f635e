"""Lanczos on a convolution network's Hessian: host-loop steps against an XLA while loop.

ConvNet-3 (width --width, instance norm; --width 32 is the cpu_sgd preset's network) with 59%
of its kernel weights pruned, the Hessian on the kept weights, mean over --batches random
batches of --batch_size 32x32x3 images. Side by side in one run, interleaved (`--rounds`
rounds after a compiling warm-up; medians reported), --steps Lanczos steps each:

  (a) host loop:  `sharpness.lanczos` on `sharpness._hessian_matvec`, as `top_eigenvalues`
                  runs them: a Python loop over the steps, each one jitted Hessian-vector
                  product per batch and one jitted update.
  (b) while loop: the very same per-batch product and update, the steps inside one jitted
                  `lax.fori_loop` (how sharpness.py ran them until 2026-12-07).
  (c) gradient:   one jitted gradient over the same batches, for scale.

Both (a) and (b) start from the same vector and give the same alphas (checked). Goal: (a)
at most 4 gradients per step; (b)/(a) is the while loop's slowdown.

  python bench/lanczos_loop.py               # ~5 min on 2 CPU cores
"""

import argparse
import datetime
import os
import statistics
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from lottery_jax import machine  # noqa: E402

from lottery_jax import masks as masks_lib  # noqa: E402
from lottery_jax import pruning, stability  # noqa: E402
from lottery_jax import train as train_lib  # noqa: E402
from lottery_jax.models import get_model  # noqa: E402
from lottery_jax.stability import sharpness  # noqa: E402

IMAGE_SHAPE = (32, 32, 3)
NUM_CLASSES = 10


def parse_args(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--width", type=int, default=32)
  parser.add_argument("--batches", type=int, default=4)
  parser.add_argument("--batch_size", type=int, default=128)
  parser.add_argument("--steps", type=int, default=5, help="Lanczos steps per measurement")
  parser.add_argument("--rounds", type=int, default=2)
  parser.add_argument("--seed", type=int, default=0)
  return parser.parse_args(argv)


def timed(fn):
  start = time.perf_counter()
  out = jax.block_until_ready(fn())
  return time.perf_counter() - start, out


def while_loop_lanczos(loss_fn, params, batches, index_K, num_steps):
  """Alphas of `num_steps` Lanczos steps from the start `top_eigenvalues` draws, the steps in a
  lax.fori_loop: (key) -> alphas_M; params and batches are arguments of the jitted call, not
  constants folded into it."""

  @jax.jit
  def run(params, batches, key):
    def matvec(v_K):
      total = jnp.zeros((1, v_K.shape[0]), v_K.dtype)
      for batch in batches:
        total = sharpness._add_batch_hvp(total, params, batch, index_K, v_K[None],
                                         loss_fn=loss_fn)
      return total[0] / len(batches)

    start_key, restart_key = jax.random.split(key)
    start = jax.random.normal(start_key, index_K.shape, jnp.float32)
    basis = jnp.zeros((num_steps + 1, start.shape[0])).at[0].set(start / jnp.linalg.norm(start))
    carry = (basis, jnp.zeros(num_steps), jnp.zeros(num_steps), jnp.zeros(()))

    def step(j, carry):
      basis, alphas, betas, scale = carry
      return sharpness._lanczos_update(basis, alphas, betas, scale, matvec(basis[j]), j,
                                       restart_key)

    return jax.lax.fori_loop(0, num_steps, step, carry)[1]

  return lambda key: run(params, batches, key)


def main(args):
  print(machine.jax_description())
  print(f"date {datetime.date.today().isoformat()}; ConvNet-3 width {args.width}, "
        f"{args.batches} batches of {args.batch_size}, {args.steps} Lanczos steps, "
        f"{args.rounds} rounds")
  model = get_model("convnet", NUM_CLASSES, width=args.width)
  params, _ = train_lib.init_variables(model, jax.random.key(args.seed), IMAGE_SHAPE)
  m = masks_lib.init_masks(params)
  for _ in range(4):
    m = pruning.prune(params, m, 0.2)
  params = masks_lib.apply_masks(params, m)
  rng = np.random.default_rng(args.seed)
  batches = [{"image": jnp.asarray(rng.standard_normal((args.batch_size, *IMAGE_SHAPE),
                                                       dtype=np.float32)),
              "label": jnp.asarray(rng.integers(0, NUM_CLASSES, args.batch_size), jnp.int32)}
             for _ in range(args.batches)]
  loss_fn = stability.classification_loss(model)
  index_K = jnp.asarray(sharpness.kept_subspace(params, m).index_K)
  print(f"{sum(np.size(x) for x in jax.tree.leaves(params)):,} params, "
        f"K = {index_K.size:,} kept, mask sparsity {masks_lib.sparsity(m):.1%}")
  key = jax.random.key(args.seed + 1)
  grad_fn = jax.jit(jax.grad(loss_fn))
  looped = while_loop_lanczos(loss_fn, params, batches, index_K, args.steps)

  def host_loop_alphas():
    tri = sharpness.lanczos(
        sharpness._hessian_matvec(loss_fn, params, batches, index_K),
        jax.random.normal(jax.random.split(key)[0], index_K.shape, jnp.float32)[None],
        args.steps, jax.random.split(key)[1][None])
    return tri.alphas_PxM[0]

  work = {"host_loop": host_loop_alphas, "while_loop": lambda: looped(key),
          "gradient": lambda: [grad_fn(params, b) for b in batches]}
  outputs = {}
  for name, fn in work.items():
    seconds, outputs[name] = timed(fn)
    print(f"warm-up {name}: {seconds:.1f} s", flush=True)
  np.testing.assert_allclose(outputs["host_loop"], outputs["while_loop"], rtol=1e-3, atol=1e-6)
  seconds = {name: [] for name in work}
  for r in range(args.rounds):
    for name, fn in work.items():
      seconds[name].append(timed(fn)[0])
    print(f"round {r + 1}: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in seconds.items()),
          flush=True)
  median = {k: statistics.median(v) for k, v in seconds.items()}
  per_step = {k: median[k] / args.steps for k in ("host_loop", "while_loop")}
  print()
  print("| measurement | s per Lanczos step (median) | gradients per step | ratio to (a) |")
  print("|---|---:|---:|---:|")
  for key_, label in (("host_loop", "(a) host loop (shipped)"),
                      ("while_loop", "(b) lax.fori_loop")):
    print(f"| {label} | {per_step[key_]:.2f} | {per_step[key_] / median['gradient']:.1f} | "
          f"{per_step[key_] / per_step['host_loop']:.2f} |")
  print(f"| (c) gradient over the {args.batches} batches | {median['gradient']:.2f} | 1.0 | |")


if __name__ == "__main__":
  main(parse_args())
