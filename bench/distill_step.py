"""Time per dataset-distillation iteration: DM and IDC on CIFAR-10-shaped data.

ConvNet-3 (width 128, depth 3, instance norm, average pooling; `get_model("convnet", 10)`)
on random 32x32x3 "real" images with 10 classes (seeded numpy normals, no dataset needed),
distilling --images_per_class stored images per class:

  DM:  `dm.make_step` (jitted, state donated): a fresh network, a real batch of
       --dm_per_class_real images per class and all synthetic images embedded after the same
       per-class DSA transform, one SGD step (lr 1, momentum 0.5) on the images.
       Default 256 real images per class, as the DM paper. 'dm-blocks' is the same step
       matching every conv block's output (distill.dm.layers='blocks').
  IDC: `idc.Step` with multi-formation factor --idc_factor (each stored image decodes into
       factor^2 training images): per class, the l1 distance between the conv-kernel gradients
       on --idc_per_class_real real images and on the class's decoded images (same DSA
       transform), one SGD step on the stored images, then --idc_net_steps SGD steps of the
       matching network on random real batches of --idc_net_batch, re-initialised every
       --idc_reinit_every iterations. Defaults follow configs/distill_cifar10.py (64 real
       images per class, 50 network steps of 256, re-initialised every 10 iterations).

Each method is compiled first (its first iteration, reported as 'first call'), then
--iterations further iterations are timed one by one up to `jax.block_until_ready` on the
new state and metrics; the median and mean are reported, and the time of a full run at the
paper's iteration count (DM 20,000, IDC 2,000) estimated from the median. The real pool holds
--pool_per_class images per class (default: the most a method needs, e.g. 40 for IDC's
10 x 2^2 starting images).

  python bench/distill_step.py                                # accelerator-sized defaults
  python bench/distill_step.py --iterations 3 --per_class_real 32 --idc_net_steps 2 \
      --idc_net_batch 64                                      # CPU-sized, ~2-4 min
"""

import argparse
import datetime
import os
import statistics
import sys
import time

import jax
import numpy as np
import optax

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from lottery_jax import machine  # noqa: E402

from lottery_jax.distill import classwise, dm, dsa, idc  # noqa: E402
from lottery_jax.models import get_model  # noqa: E402

IMAGE_SHAPE = (32, 32, 3)
NUM_CLASSES = 10
FULL_RUN_ITERATIONS = {"dm": 20_000, "dm-blocks": 20_000, "idc": 2_000}  # DM paper; IDC's.


def parse_args(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--methods", default="dm,dm-blocks,idc",
                      help="comma-separated: dm, dm-blocks, idc")
  parser.add_argument("--iterations", type=int, default=10,
                      help="timed iterations per method, after the compiling first one")
  parser.add_argument("--images_per_class", type=int, default=10,
                      help="stored synthetic images per class")
  parser.add_argument("--per_class_real", type=int, default=None,
                      help="real images per class per iteration for both methods (overrides "
                      "--dm_per_class_real and --idc_per_class_real)")
  parser.add_argument("--dm_per_class_real", type=int, default=256)
  parser.add_argument("--idc_per_class_real", type=int, default=64)
  parser.add_argument("--idc_factor", type=int, default=2)
  parser.add_argument("--idc_net_steps", type=int, default=50)
  parser.add_argument("--idc_net_batch", type=int, default=256)
  parser.add_argument("--idc_reinit_every", type=int, default=10)
  parser.add_argument("--pool_per_class", type=int, default=None,
                      help="random real images per class (default: the most any method "
                      "needs: its real batch and starting images per class)")
  parser.add_argument("--seed", type=int, default=0)
  args = parser.parse_args(argv)
  if args.per_class_real is not None:
    args.dm_per_class_real = args.idc_per_class_real = args.per_class_real
  args.methods = [m.strip() for m in args.methods.split(",") if m.strip()]
  unknown = [m for m in args.methods if m not in FULL_RUN_ITERATIONS]
  if unknown:
    parser.error(f"unknown method {unknown[0]!r}; valid: {', '.join(FULL_RUN_ITERATIONS)}")
  # Real images per class each method needs: its real batch and its starting images (IDC:
  # images_per_class x factor^2 before encoding).
  needed = [1]
  if {"dm", "dm-blocks"} & set(args.methods):
    needed += [args.dm_per_class_real, args.images_per_class]
  if "idc" in args.methods:
    needed += [args.idc_per_class_real, args.images_per_class * args.idc_factor**2,
               -(-args.idc_net_batch // NUM_CLASSES)]
  if args.pool_per_class is None:
    args.pool_per_class = max(needed)
  elif args.pool_per_class < max(needed):
    parser.error(f"--pool_per_class must be at least {max(needed)} (the real batch and the "
                 f"starting images per class)")
  if args.iterations < 1:
    parser.error("--iterations must be at least 1")
  return args



def time_iterations(step_fn, state, real, key, iterations: int):
  """(seconds of the first, compiling call, [seconds of each further call], final state)."""
  start = time.perf_counter()
  state, metrics = step_fn(state, real, key)
  jax.block_until_ready((state, metrics))
  first = time.perf_counter() - start
  if not np.isfinite(float(metrics["loss"])):
    sys.exit(f"non-finite loss {float(metrics['loss'])} at the first iteration")
  seconds = []
  for _ in range(iterations):
    start = time.perf_counter()
    state, metrics = step_fn(state, real, key)
    jax.block_until_ready((state, metrics))
    seconds.append(time.perf_counter() - start)
  if not np.isfinite(float(metrics["loss"])):
    sys.exit(f"non-finite loss {float(metrics['loss'])} at the last iteration")
  return first, seconds, state


def main(args):
  print(machine.jax_description())
  print(f"date {datetime.date.today().isoformat()}; ConvNet-3 (width 128, depth 3, instance "
        f"norm, avg pooling), {NUM_CLASSES} classes of {IMAGE_SHAPE[0]}x{IMAGE_SHAPE[1]}x"
        f"{IMAGE_SHAPE[2]} random images, {args.pool_per_class} real images per class; "
        f"{args.images_per_class} stored images per class; DSA defaults (one random op per "
        f"call); {args.iterations} timed iterations per method after a compiling one")
  settings = {
      "dm": f"{args.dm_per_class_real} real/class, SGD lr 1 momentum 0.5",
      "dm-blocks": "as dm, matching every conv block's output",
      "idc": (f"factor {args.idc_factor}, {args.idc_per_class_real} real/class, l1 on conv "
              f"grads, {args.idc_net_steps} net steps x batch {args.idc_net_batch}, reinit "
              f"every {args.idc_reinit_every}, SGD lr 0.005 momentum 0.5 on the images"),
  }
  for m in args.methods:
    print(f"{m}: {settings[m]}")

  model = get_model("convnet", NUM_CLASSES)
  rng = np.random.default_rng(args.seed)
  labels = np.repeat(np.arange(NUM_CLASSES, dtype=np.int32), args.pool_per_class)
  images = rng.standard_normal((len(labels), *IMAGE_SHAPE), dtype=np.float32)
  real = classwise.build(images, labels, NUM_CLASSES)
  dsa_params = dsa.DsaParams()
  init_key, key = jax.random.split(jax.random.key(args.seed))
  ipc = args.images_per_class

  def start_images(per_class):
    """Random real images of each class, sorted by class (as distill.init='real')."""
    pick = np.concatenate([c * args.pool_per_class + rng.choice(args.pool_per_class,
                                                                per_class, replace=False)
                           for c in range(NUM_CLASSES)])
    return images[pick]

  rows = []
  for method in args.methods:
    if method in ("dm", "dm-blocks"):
      tx = optax.sgd(1.0, momentum=0.5)
      step_fn = dm.make_step(model, tx, dsa_params, args.dm_per_class_real, real.largest_class,
                             layers="blocks" if method == "dm-blocks" else "head")
      state = dm.init_state(start_images(ipc), tx)
      real_per_class, training_images = args.dm_per_class_real, NUM_CLASSES * ipc
    else:
      factor = args.idc_factor
      tx = optax.sgd(0.005, momentum=0.5)
      net_tx = optax.sgd(0.01, momentum=0.9)
      step_fn = idc.Step(model, tx, net_tx, dsa_params, num_classes=NUM_CLASSES,
                         images_per_class=ipc, factor=factor, metric="l1",
                         per_class_real=args.idc_per_class_real,
                         max_count=real.largest_class, reinit_every=args.idc_reinit_every,
                         net_steps=args.idc_net_steps, net_batch=args.idc_net_batch)
      placeholder = idc.fresh_net(model, init_key, IMAGE_SHAPE, net_tx)
      state = idc.init_state(idc.encode(start_images(ipc * factor**2), factor), tx,
                             placeholder)
      real_per_class, training_images = args.idc_per_class_real, NUM_CLASSES * ipc * factor**2
    first, seconds, _ = time_iterations(step_fn, state, real, key, args.iterations)
    median, mean = statistics.median(seconds), statistics.mean(seconds)
    rows.append((method, real_per_class, training_images, first, median, mean,
                 median * FULL_RUN_ITERATIONS[method]))
    print(f"{method}: first call {first:.1f} s; iterations (s): "
          + ", ".join(f"{s:.3f}" for s in seconds), flush=True)

  print()
  print("| method | real / class | training images | first call (s) | median (ms/iter) | "
        "mean (ms/iter) | full run (h) |")
  print("|---|---:|---:|---:|---:|---:|---:|")
  for method, real_pc, n_train, first, median, mean, full in rows:
    name = {"dm": "DM", "dm-blocks": "DM, every block",
            "idc": f"IDC (factor {args.idc_factor})"}[method]
    print(f"| {name} | {real_pc} | {n_train} | {first:.1f} | {1e3 * median:.1f} | "
          f"{1e3 * mean:.1f} | {full / 3600:.2f} ({FULL_RUN_ITERATIONS[method]:,} iters) |")


if __name__ == "__main__":
  main(parse_args())
