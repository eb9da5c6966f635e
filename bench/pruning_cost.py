"""Cost of producing masks: distilled pruning (100 distilled images) against IMP (the full
CIFAR-10 train set), ConvNet-3, R rounds, measured side by side in one run.

    python bench/pruning_cost.py --scale=0.001            # a CPU-sized run (~5 min on 2 cores)
    python bench/pruning_cost.py --scale=1                # the paper's schedules (accelerator)

Each round of each producer trains from theta_0 with the current mask and prunes 20% of the
remaining weights by global magnitude with the library's IMP loop (lottery_jax.imp.imp_masks;
no evaluation training). Both schedules are shortened by the same `--scale` (IMP: 100 epochs =
19,500 steps at batch 256; distilled: 1,000 steps at batch 100), so the wall-time ratio is
that of the full schedules up to fixed per-round costs; the examples-processed ratio is exact.
Compilation is done before timing.
"""

import argparse
import importlib.util
import os
import platform
import sys
import time

import jax

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from lottery_jax import imp, masks, models, optim  # noqa: E402
from lottery_jax import train as train_lib  # noqa: E402
from lottery_jax.data.dataset import load_dataset  # noqa: E402
from lottery_jax.data.distilled_npz import load_distilled  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def produce(recipe, images, labels, theta0, stats0, rounds, name):
  """R rounds of train -> prune -> rewind (imp.imp_masks, every round on the same data order
  from seeds data_order=0 and augment=0); returns (seconds, examples processed, sparsity)."""
  data_key, train_key = jax.random.key(0), jax.random.key(0)

  def train_fn(rewind, m):
    state = train_lib.new_state(rewind.params, rewind.batch_stats, m, recipe.tx)
    return train_lib.fit(state, recipe.step_fn, images, labels, num_steps=recipe.num_steps,
                         batch_size=recipe.batch_size, data_key=data_key, train_key=train_key,
                         log_every=10**9, desc=name)

  began = time.perf_counter()
  m = imp.imp_masks(masks.init_masks(theta0), train_fn, imp.magnitude_prune_fn(0.2),
                    imp.RewindPoint(theta0, stats0), rounds)[-1]
  jax.block_until_ready(m)
  examples = rounds * recipe.num_steps * min(recipe.batch_size, len(labels))
  return time.perf_counter() - began, examples, masks.sparsity(m)


def _presets():
  """configs/presets.py (the paper's CIFAR base), loaded by path as config files load it."""
  spec = importlib.util.spec_from_file_location(
      "presets", os.path.join(ROOT, "configs", "presets.py"))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--scale", type=float, default=0.001,
                      help="fraction of the full schedules to run (1 = paper)")
  parser.add_argument("--rounds", type=int, default=8)
  parser.add_argument("--data", default=os.path.join(ROOT, "..", "shared", "data",
                                                     "cifar10-jpeg.tar.gz"))
  parser.add_argument("--distilled", default=os.path.join(ROOT, "..", "shared", "data",
                                                          "cifar10_ipc10_mtt.npz"))
  args = parser.parse_args()

  config = _presets().cifar_base(args.data)
  data = load_dataset(config.data)
  syn = load_distilled(args.distilled, image_shape_HWC=data.image_shape,
                       num_classes=data.num_classes)
  model = models.get_model("convnet", data.num_classes)
  theta0, stats0 = train_lib.init_variables(model, jax.random.key(0), data.image_shape)
  full_real = optim.num_steps_for(config.train, len(data.train_labels))
  full_syn = optim.num_steps_for(config.distilled.train, len(syn.labels))
  real_steps = max(1, round(args.scale * full_real))
  syn_steps = max(1, round(args.scale * full_syn))
  real = imp.make_recipe(model, config.train, len(data.train_labels), 4, True, real_steps)
  dist = imp.make_recipe(model, config.distilled.train, len(syn.labels), 4, True, syn_steps)

  # Compile both steps before timing.
  produce(real._replace(num_steps=1), data.train_images, data.train_labels, theta0, stats0, 1,
          "warm-up imp")
  produce(dist._replace(num_steps=1), syn.images, syn.labels, theta0, stats0, 1,
          "warm-up distilled")

  t_syn, n_syn, s_syn = produce(dist, syn.images, syn.labels, theta0, stats0, args.rounds,
                                "distilled")
  t_imp, n_imp, s_imp = produce(real, data.train_images, data.train_labels, theta0, stats0,
                                args.rounds, "imp")

  print(f"machine: {platform.platform()}, {os.cpu_count()} CPUs, jax {jax.__version__} on "
        f"{jax.devices()[0].device_kind}")
  print(f"ConvNet-3 on CIFAR-10 (JPEG copy), {args.rounds} rounds, final sparsity "
        f"{100 * s_imp:.1f}% (IMP) / {100 * s_syn:.1f}% (distilled)")
  print(f"schedules at scale {args.scale}: IMP {real_steps} of {full_real} steps per round "
        f"(batch {real.batch_size}), distilled {syn_steps} of {full_syn} steps per round "
        f"(batch {min(dist.batch_size, len(syn.labels))})")
  print(f"{'producer':<10} {'examples':>14} {'wall time (s)':>14}")
  print(f"{'imp':<10} {n_imp:>14,} {t_imp:>14.1f}")
  print(f"{'distilled':<10} {n_syn:>14,} {t_syn:>14.1f}")
  print(f"ratio IMP / distilled: examples {n_imp / n_syn:.1f}x, wall time {t_imp / t_syn:.1f}x")


if __name__ == "__main__":
  main()
