"""Two ConvNet-3 networks trained one after another against together (train_many, vmapped).

The two networks of an LMC pair: same init and ~79%-sparse mask, two random batch streams.
Each round runs --steps steps of network A then B with the jitted `train.train_step`
(sequential), and --steps steps of both in one vmapped step (`train_many`), interleaved,
after a compiling warm-up; medians over --rounds rounds. Ratio > 1: together is faster.

  python bench/paired_training.py                          # CIFAR-sized: 32x32x3, batch 128
  python bench/paired_training.py --image_size 8 --channels 1 --width 32   # quickstart-sized
"""

import argparse
import datetime
import os
import statistics
import sys
import time

import jax
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from lottery_jax import machine  # noqa: E402

from lottery_jax import masks as masks_lib  # noqa: E402
from lottery_jax import optim, pruning, train_many  # noqa: E402
from lottery_jax import train as train_lib  # noqa: E402
from lottery_jax.models import get_model  # noqa: E402


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--image_size", type=int, default=32)
  parser.add_argument("--channels", type=int, default=3)
  parser.add_argument("--width", type=int, default=128)
  parser.add_argument("--batch_size", type=int, default=128)
  parser.add_argument("--steps", type=int, default=4, help="steps per network per round")
  parser.add_argument("--rounds", type=int, default=3)
  args = parser.parse_args()
  print(machine.jax_description())
  shape = (args.image_size, args.image_size, args.channels)
  print(f"date {datetime.date.today().isoformat()}; ConvNet-3 width {args.width} on {shape}, "
        f"batch {args.batch_size}, {args.steps} steps per network, {args.rounds} rounds")
  model = get_model("convnet", 10, width=args.width)
  params, batch_stats = train_lib.init_variables(model, jax.random.key(0), shape)
  m = masks_lib.init_masks(params)
  for _ in range(7):
    m = pruning.prune(params, m, 0.2)
  tx = optim.make_optimizer("adam", 1e-3, weight_decay=8e-4)
  rng = np.random.default_rng(0)
  batches = [[{"image": rng.standard_normal((args.batch_size, *shape), dtype=np.float32),
               "label": rng.integers(0, 10, args.batch_size).astype(np.int32)}
              for _ in range(args.steps)] for _ in range(2)]
  keys = [jax.random.key(1), jax.random.key(2)]
  single = train_lib.make_train_step(model, tx)
  multi = train_many.make_multi_train_step(model, tx)
  stacked = [train_many.stack([a, b]) for a, b in zip(*batches)]
  stacked_keys = train_many.stack(keys)
  fresh = lambda: train_lib.new_state(params, batch_stats, m, tx)

  def sequential():
    out = []
    for k in range(2):
      state = fresh()
      for batch in batches[k]:
        state, _ = single(state, batch, keys[k])
      out.append(state.params)
    return out

  def together():
    state = train_many.stack([fresh(), fresh()])
    for batch in stacked:
      state, _ = multi(state, batch, stacked_keys)
    return state.params

  def timed(fn):
    start = time.perf_counter()
    jax.block_until_ready(fn())
    return time.perf_counter() - start

  work = {"sequential": sequential, "together": together}
  for name, fn in work.items():
    print(f"warm-up {name}: {timed(fn):.1f} s", flush=True)
  seconds = {name: [] for name in work}
  for r in range(args.rounds):
    for name, fn in work.items():
      seconds[name].append(timed(fn))
    print(f"round {r + 1}: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in seconds.items()),
          flush=True)
  median = {k: statistics.median(v) for k, v in seconds.items()}
  paired = statistics.median(s / t for s, t in zip(seconds["sequential"], seconds["together"]))
  steps = 2 * args.steps
  print()
  print("| variant | median (s) | ms per network-step | speed-up over sequential |")
  print("|---|---:|---:|---:|")
  print(f"| sequential (A then B) | {median['sequential']:.2f} | "
        f"{1e3 * median['sequential'] / steps:.0f} | 1.00 |")
  print(f"| together (vmapped) | {median['together']:.2f} | "
        f"{1e3 * median['together'] / steps:.0f} | {median['sequential'] / median['together']:.2f}"
        f" (paired {paired:.2f}) |")


if __name__ == "__main__":
  main()
