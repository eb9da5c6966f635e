"""Hutchinson on a small MLP: wall time of `stability.hessian_diagonal` with many probes.

A 6-9-3 tanh MLP (93 parameters) on one batch of random inputs; the estimate with
--probes probes (first call: compilation included; second call: cached), for each
--probe_batch, and its relative L2 error against the exact diagonal (jax.hessian).
Compile time must not grow with --probes (one jitted block, called probes / block times).

  python bench/hutchinson_mlp.py                        # 2,000 probes, default and 500 a block
"""

import argparse
import datetime
import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from lottery_jax import machine  # noqa: E402

from lottery_jax import stability  # noqa: E402
from lottery_jax.stability import hessian  # noqa: E402

SIZES = (6, 9, 3)


def loss_fn(params, batch):
  """Mean cross-entropy of the tanh MLP `params` (list of (W, b)) on batch = (x, y)."""
  x, y = batch
  for i, (w, b) in enumerate(params):
    x = x @ w + b
    if i < len(params) - 1:
      x = jnp.tanh(x)
  return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(x), y[:, None], axis=1))


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--probes", type=int, default=2000)
  parser.add_argument("--probe_batch", type=str, default="default,500",
                      help="comma-separated blocks ('default' = stability's default)")
  parser.add_argument("--batch", type=int, default=256, help="examples in the batch")
  args = parser.parse_args()
  print(machine.jax_description())
  print(f"date {datetime.date.today().isoformat()}; MLP {SIZES}, {args.probes} probes, batch "
        f"{args.batch}; default probe_batch here: {hessian.default_probe_batch()}")
  keys = jax.random.split(jax.random.key(0), len(SIZES))
  params = [(jax.random.normal(k, (m, n)) / np.sqrt(m), jnp.zeros(n))
            for k, m, n in zip(keys, SIZES[:-1], SIZES[1:])]
  rng = np.random.default_rng(0)
  batch = (jnp.asarray(rng.normal(size=(args.batch, SIZES[0])), jnp.float32),
           jnp.asarray(rng.integers(0, SIZES[-1], args.batch), jnp.int32))
  flat, unravel = ravel_pytree(params)
  exact = np.diag(np.asarray(jax.hessian(lambda f: loss_fn(unravel(f), batch))(flat)))
  print(f"{flat.size} parameters")
  print("| probe_batch | first call (s) | second call (s) | relative error |")
  print("|---|---:|---:|---:|")
  for block in args.probe_batch.split(","):
    probe_batch = None if block == "default" else int(block)
    seconds = []
    for _ in range(2):
      start = time.perf_counter()
      diag = jax.block_until_ready(stability.hessian_diagonal(
          loss_fn, params, [batch], jax.random.key(1), args.probes, probe_batch=probe_batch))
      seconds.append(time.perf_counter() - start)
    estimate = np.asarray(ravel_pytree(diag)[0])
    error = np.linalg.norm(estimate - exact) / np.linalg.norm(exact)
    print(f"| {block} | {seconds[0]:.2f} | {seconds[1]:.2f} | {error:.1%} |", flush=True)


if __name__ == "__main__":
  main()
