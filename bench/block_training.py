"""`train.fit` step by step against blocks on the device, and float32 against bfloat16
compute: ConvNet-3 on random 32x32x3 images, ~79%-sparse mask, Adam with the paper's step
schedule, side by side in one process.

Variants (--variants, comma-separated): `step` (loop='step', float32: the reference), `block`
(loop='block'), `bf16-step`, `bf16-block` (train.compute_dtype='bfloat16'). Every variant
trains `--steps` steps from the same state through `train.fit` (checkpoints off, metrics read
back every `--log_every` steps) after an untimed warm-up fit of the same length (compilation);
rounds are interleaved and the median seconds per step is reported with its ratio to `step`
(> 1: faster). The first variant's parameters are compared with each other variant's after
the warm-up: max |difference| (0 means bit-identical).

  python bench/block_training.py                                   # accelerator sizes
  python bench/block_training.py --width 32 --batch_size 64 --steps 4 --rounds 2   # a CPU
"""

import argparse
import datetime
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from lottery_jax import xla_defaults  # noqa: E402

xla_defaults.apply()  # As `python -m lottery_jax.main` does (CPU only; before jax starts).

import jax  # noqa: E402
import numpy as np  # noqa: E402

from lottery_jax import machine  # noqa: E402

from lottery_jax import masks as masks_lib  # noqa: E402
from lottery_jax import optim, pruning  # noqa: E402
from lottery_jax import train as train_lib  # noqa: E402
from lottery_jax.models import get_model  # noqa: E402

VARIANTS = {"step": ("step", "float32"), "block": ("block", "float32"),
            "bf16-step": ("step", "bfloat16"), "bf16-block": ("block", "bfloat16")}


def parse_args(argv=None):
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--width", type=int, default=128)
  p.add_argument("--batch_size", type=int, default=256)
  p.add_argument("--num_examples", type=int, default=0, help="0: 4 batches")
  p.add_argument("--steps", type=int, default=400, help="timed steps per variant per round")
  p.add_argument("--rounds", type=int, default=3)
  p.add_argument("--block_steps", type=int, default=200)
  p.add_argument("--log_every", type=int, default=100)
  p.add_argument("--variants", default="step,block,bf16-step,bf16-block")
  return p.parse_args(argv)


def main(argv=None):
  args = parse_args(argv)
  names = args.variants.split(",")
  model = get_model("convnet", 10, width=args.width)
  params, stats = train_lib.init_variables(model, jax.random.key(0), (32, 32, 3))
  m = masks_lib.init_masks(params)
  for _ in range(7):
    m = pruning.prune(params, m, 0.2)
  schedule = optim.make_schedule("step", 8e-4, args.steps)
  tx = optim.make_optimizer("adam", schedule, weight_decay=8e-4)
  n = args.num_examples or 4 * args.batch_size
  rng = np.random.default_rng(0)
  images = rng.normal(size=(n, 32, 32, 3)).astype(np.float32)
  labels = rng.integers(0, 10, n).astype(np.int32)
  steps = {dtype: train_lib.make_train_step(model, tx, schedule, compute_dtype=dtype)
           for dtype in {VARIANTS[v][1] for v in names}}

  def fit(name):
    loop, dtype = VARIANTS[name]
    state = train_lib.fit(train_lib.new_state(params, stats, m, tx), steps[dtype], images,
                          labels, num_steps=args.steps, batch_size=args.batch_size,
                          data_key=jax.random.key(1), train_key=jax.random.key(2),
                          log_every=args.log_every, loop=loop, block_steps=args.block_steps)
    return jax.block_until_ready(state)

  print(datetime.date.today().isoformat(), machine.jax_description())
  print(f"ConvNet-3 width {args.width}, batch {args.batch_size}, {n} examples, {args.steps} "
        f"steps per fit, blocks of {args.block_steps}, load {os.getloadavg()[0]:.1f}")
  trained = {name: fit(name) for name in names}
  ref = jax.tree.leaves(trained[names[0]].params)
  for name in names[1:]:
    diff = max(float(np.max(np.abs(np.asarray(a) - np.asarray(b))))
               for a, b in zip(ref, jax.tree.leaves(trained[name].params)))
    print(f"  {name}: max |param - {names[0]}'s| after {args.steps} steps = {diff:.3g}")
  times = {name: [] for name in names}
  for _ in range(args.rounds):
    for name in names:
      t0 = time.perf_counter()
      fit(name)
      times[name].append((time.perf_counter() - t0) / args.steps)
  base = statistics.median(times[names[0]])
  print(f"| variant | ms/step (median of {args.rounds}) | ratio to {names[0]} (> 1 faster) |")
  print("|---|---:|---:|")
  for name in names:
    med = statistics.median(times[name])
    print(f"| {name} | {1000 * med:.2f} | {base / med:.2f}x |")
  print(f"load average at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
  main()
