"""Throughput of the stability analyses on ConvNet-3 against a plain jitted forward pass.

ConvNet-3 (width 128, depth 3, instance norm, average pooling; 320,010 params) on N random
32x32x3 images with 10 classes. Measured side by side in one run, interleaved (one repeat of
each per round, `--rounds` rounds after a compiling warm-up; medians reported):

  (a) forward:   `loss.evaluate` (jitted eval step, chunks of --chunk_size), images / s.
  (b) LMC:       `stability.path_metrics` with --points alphas, alphas x images / s.
  (c) landscape: `stability.grid_losses` on a (points / 2) x 2 grid, points x images / s.
  (d) Hessian:   `stability.hessian_diagonal` with --probes probes on one batch of
                 --hessian_batch images against one jitted gradient (`jax.grad` of the same
                 loss) on that batch: seconds per probe / seconds per gradient.

Goals: (b)/(a) >= 0.8 and (c)/(a) >= 0.8 (the analyses cost no more than plain evaluation of
as many networks), (d) <= 3 gradients per probe.

  python bench/analysis_throughput.py                                # CPU-sized, ~1-2 min
  python bench/analysis_throughput.py --num_images 10000 --points 31 --chunk_size 1000 \
      --probes 32 --hessian_batch 256                               # accelerator-sized
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

from lottery_jax import loss as loss_lib  # noqa: E402
from lottery_jax import masks as masks_lib  # noqa: E402
from lottery_jax import pruning, stability  # noqa: E402
from lottery_jax import train as train_lib  # noqa: E402
from lottery_jax.models import get_model  # noqa: E402

IMAGE_SHAPE = (32, 32, 3)
NUM_CLASSES = 10


def parse_args(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--num_images", type=int, default=256, help="N, the evaluation set")
  parser.add_argument("--points", type=int, default=8,
                      help="LMC alphas and landscape grid points (even)")
  parser.add_argument("--chunk_size", type=int, default=256, help="examples per jitted call")
  parser.add_argument("--point_batch", type=int, default=None,
                      help="alphas / grid points vmapped at a time (default: one at a time)")
  parser.add_argument("--probes", type=int, default=4, help="Hutchinson probes")
  parser.add_argument("--probe_batch", type=int, default=None,
                      help="probes vmapped at a time (default: stability.hessian's)")
  parser.add_argument("--hessian_batch", type=int, default=128,
                      help="images in the batch of the gradient / Hessian")
  parser.add_argument("--rounds", type=int, default=5)
  parser.add_argument("--seed", type=int, default=0)
  return parser.parse_args(argv)



def timed(fn) -> float:
  start = time.perf_counter()
  jax.block_until_ready(fn())
  return time.perf_counter() - start


def main(args):
  if args.points % 2:
    sys.exit("--points must be even (the landscape grid is points/2 x 2)")
  print(machine.jax_description())
  print(f"date {datetime.date.today().isoformat()}; N={args.num_images} images, "
        f"{args.points} alphas / grid points, chunk {args.chunk_size}, point_batch "
        f"{args.point_batch}, {args.probes} probes (probe_batch {args.probe_batch}) on "
        f"{args.hessian_batch} images, {args.rounds} rounds")

  model = get_model("convnet", NUM_CLASSES)
  params_a, _ = train_lib.init_variables(model, jax.random.key(args.seed), IMAGE_SHAPE)
  params_b, _ = train_lib.init_variables(model, jax.random.key(args.seed + 1), IMAGE_SHAPE)
  m = masks_lib.init_masks(params_a)
  for _ in range(7):
    m = pruning.prune(params_a, m, 0.2)
  params_a, params_b = (masks_lib.apply_masks(p, m) for p in (params_a, params_b))
  rng = np.random.default_rng(args.seed)
  images = rng.standard_normal((args.num_images, *IMAGE_SHAPE), dtype=np.float32)
  labels = rng.integers(0, NUM_CLASSES, args.num_images).astype(np.int32)
  print(f"ConvNet-3: {sum(np.size(x) for x in jax.tree.leaves(params_a)):,} params, "
        f"mask sparsity {masks_lib.sparsity(m):.1%}")

  eval_step = loss_lib.make_eval_step(model)
  alphas = np.linspace(0.0, 1.0, args.points).astype(np.float32)
  u, v = stability.plane_directions(params_a, params_b, m, jax.random.key(args.seed + 2))
  coords_a = np.linspace(-0.5, 1.5, args.points // 2).astype(np.float32)
  coords_b = np.array([0.0, 0.5], np.float32)
  loss_fn = stability.classification_loss(model)
  batch = {"image": jnp.asarray(images[:args.hessian_batch]),
           "label": jnp.asarray(labels[:args.hessian_batch])}
  grad_fn = jax.jit(jax.grad(loss_fn))
  hessian_key = jax.random.key(args.seed + 3)

  work = {
      "forward": (args.num_images, lambda: loss_lib.evaluate(
          eval_step, params_a, {}, images, labels, batch_size=args.chunk_size)["loss"]),
      "lmc": (args.points * args.num_images, lambda: stability.path_metrics(
          model, params_a, params_b, alphas, images, labels, chunk_size=args.chunk_size,
          alpha_batch=args.point_batch)["loss_A"]),
      "landscape": (args.points * args.num_images, lambda: stability.grid_losses(
          model, params_a, u, v, coords_a, coords_b, images, labels,
          chunk_size=args.chunk_size, point_batch=args.point_batch)),
      "gradient": (1, lambda: grad_fn(params_a, batch)),
      "hutchinson": (args.probes, lambda: stability.hessian_diagonal(
          loss_fn, params_a, [batch], hessian_key, args.probes, masks=m,
          probe_batch=args.probe_batch)),
  }
  for name, (_, fn) in work.items():
    print(f"warm-up {name}: {timed(fn):.1f} s", flush=True)
  seconds = {name: [] for name in work}
  for r in range(args.rounds):
    for name, (_, fn) in work.items():
      seconds[name].append(timed(fn))
    print(f"round {r + 1}: " + ", ".join(f"{k} {v[-1]:.3f} s" for k, v in seconds.items()),
          flush=True)

  median = {k: statistics.median(v) for k, v in seconds.items()}
  rate = {k: work[k][0] / median[k] for k in ("forward", "lmc", "landscape")}
  paired = {k: statistics.median(work[k][0] / s / (args.num_images / f)
                                 for s, f in zip(seconds[k], seconds["forward"]))
            for k in ("lmc", "landscape")}
  per_probe = median["hutchinson"] / args.probes / median["gradient"]
  print()
  print("| measurement | median | unit | ratio | goal |")
  print("|---|---:|---|---:|---|")
  print(f"| (a) forward | {rate['forward']:.0f} | images/s | 1.00 | |")
  for key, label in (("lmc", "(b) LMC path"), ("landscape", "(c) landscape grid")):
    print(f"| {label} | {rate[key]:.0f} | points x images/s | {rate[key] / rate['forward']:.2f}"
          f" (paired {paired[key]:.2f}) | >= 0.8 |")
  print(f"| (d) gradient, batch {args.hessian_batch} | {1e3 * median['gradient']:.0f} | ms | |"
        " |")
  print(f"| (d) Hutchinson probe | {1e3 * median['hutchinson'] / args.probes:.0f} | ms | "
        f"{per_probe:.2f} gradients | <= 3 |")


if __name__ == "__main__":
  main(parse_args())
