"""Throughput of the masked ConvNet-3 train step: lottery_jax against an equivalent PyTorch step.

Both sides train ConvNet-3 (width 128, depth 3, instance norm, average pooling, dense head;
320,010 parameters) on one fixed batch of random 32x32x3 images with 10 classes, with Adam
(learning rate 8e-4, L2 weight decay 8e-4) and the same ~80%-sparse mask (global magnitude
pruning of the initial weights, 20% seven times):

  lottery_jax: `train.make_train_step` (jitted, state donated; masks grads, updates and params,
               and computes its metrics).
  torch:       the same network in float32, eager; grads of the prunable conv/linear weights are
               multiplied by the mask before `optimizer.step()` and the weights after it.
  torch.compile: the same with `torch.compile(model)` (inductor) for forward and backward; the
               masking and the optimizer step stay eager.

Torch starts from the very same weights (copied from the flax params) and the script checks
that both give the same loss on the batch before timing. Torch runs in channels_last by default
(as fast as NCHW eager, ~5% faster compiled, on the machine of bench/README.md). Timing is
interleaved: `--rounds` rounds of (`--steps` lottery_jax steps, `--steps` torch steps,
`--steps` torch.compile steps), after a warm-up (compilation) of each; the median images/s over
rounds is reported per framework. JAX is timed up to `jax.block_until_ready` on the new state
and metrics; torch on the CPU is synchronous.

  python bench/train_step.py                          # batch 256, 5 rounds of 4 steps, 2-4 min
  python bench/train_step.py --no-torch_compile       # eager torch only
  python bench/train_step.py --torch_layout both      # NCHW and channels_last
  python bench/train_step.py --xla_flags="--xla_cpu_experimental_ynn_fusion_type=-reduce"
  python bench/train_step.py --sweep_xla_options      # every XLA:CPU variant below, ~1 min each

XLA_FLAGS must be set before jax initialises, so `--sweep_xla_options` runs each variant of
XLA_VARIANTS in its own subprocess (a fresh jax) that times lottery_jax against eager torch
interleaved, as above, and reports its ratio; variants that compare XLA:CPU options are only
compared through these ratios (the machines are shared and noisy). The script applies
lottery_jax.xla_defaults (the CPU defaults `python -m lottery_jax.main` uses) unless
`--no-xla_defaults`; a flag given by --xla_flags or the environment's XLA_FLAGS wins.
"""

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time

import numpy as np

IMAGE_SHAPE = (32, 32, 3)
NUM_CLASSES = 10
LEARNING_RATE = 8e-4
WEIGHT_DECAY = 8e-4
PRUNE_FRACTION = 0.2
PRUNE_ROUNDS = 7


def parse_args(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--batch_size", type=int, default=256)
  parser.add_argument("--steps", type=int, default=4,
                      help="timed steps per framework per round")
  parser.add_argument("--rounds", type=int, default=5,
                      help="interleaved rounds; the median over rounds is reported")
  parser.add_argument("--warmup", type=int, default=2,
                      help="untimed steps per framework before timing (compilation)")
  parser.add_argument("--threads", type=int, default=os.cpu_count(),
                      help="torch.set_num_threads (default: all cores); JAX uses all cores "
                      "unless this is 1, which turns off XLA's multi-threaded Eigen")
  parser.add_argument("--torch_layout", choices=("nchw", "channels_last", "both"),
                      default="channels_last",
                      help="torch memory format of images, weights and activations ('both' "
                      "times each)")
  parser.add_argument("--torch_compile", action=argparse.BooleanOptionalAction, default=True,
                      help="also time torch.compile(model) (inductor; compiles in ~30 s)")
  parser.add_argument("--only", choices=("jax", "torch"), default=None,
                      help="time one framework alone (to check interleaving costs nothing)")
  parser.add_argument("--torch_device", choices=("auto", "cpu", "cuda"), default="auto",
                      help="where torch runs (auto: cuda when torch sees a GPU, else cpu); "
                      "JAX runs on its default backend")
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--xla_flags", default="",
                      help="extra XLA_FLAGS for this process (appended to the environment's)")
  parser.add_argument("--xla_defaults", action=argparse.BooleanOptionalAction, default=True,
                      help="apply lottery_jax.xla_defaults (as lottery_jax.main does)")
  parser.add_argument("--sweep_xla_options", action="store_true",
                      help="time each variant of XLA_VARIANTS in a subprocess against eager "
                      "torch (torch.compile off), print the ratios side by side")
  parser.add_argument("--variants", default=",".join(XLA_VARIANTS),
                      help="comma-separated names from XLA_VARIANTS for --sweep_xla_options")
  parser.add_argument("--sweep_repeats", type=int, default=1,
                      help="run the list of variants this many times (A B C A B C ...)")
  parser.add_argument("--result_line", action="store_true", help=argparse.SUPPRESS)
  args = parser.parse_args(argv)
  unknown = [v for v in args.variants.split(",") if v not in XLA_VARIANTS]
  if unknown:
    parser.error(f"unknown --variants {', '.join(unknown)}; valid: {', '.join(XLA_VARIANTS)}")
  return args


_YNN = "--xla_cpu_experimental_ynn_fusion_type="
# name -> (XLA_FLAGS, apply lottery_jax.xla_defaults). jaxlib 0.10's default YNN fusion types
# are individual_convolution, reduce and individual_dot; the oneDNN / XNNPACK / thunk-runtime
# flags compile this step to the same HLO as the default (checked on jax 0.10.2).
XLA_VARIANTS = {
    "jax-default": ("", False),
    "lottery_jax": ("", True),
    "onednn": ("--xla_cpu_use_onednn=true", False),
    "onednn-custom-call": ("--xla_cpu_experimental_onednn_custom_call=true", False),
    "xnnpack": ("--xla_cpu_use_xnnpack=true", False),
    "xnn-graph-greedy": (("--xla_cpu_experimental_xnn_graph_fusion_mode="
                          "XNN_GRAPH_FUSION_MODE_GREEDY"), False),
    "no-thunk-runtime": ("--xla_cpu_use_thunk_runtime=false", False),
    "ynn-no-conv": (_YNN + "-individual_convolution", False),
    "ynn-no-reduce": (_YNN + "-reduce", False),
    "ynn-no-conv-no-reduce": (_YNN + "-individual_convolution,-reduce", False),
    "ynn-off": (_YNN + "-individual_convolution,-reduce,-individual_dot", False),
}


ARGS = parse_args() if __name__ == "__main__" else None
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if ARGS is not None:
  # Must be set before jax initialises its CPU backend.
  extra = ARGS.xla_flags + (" --xla_cpu_multi_thread_eigen=false" if ARGS.threads == 1 else "")
  os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + extra).strip()
  if ARGS.xla_defaults and not ARGS.sweep_xla_options:
    from lottery_jax import xla_defaults  # pylint: disable=g-import-not-at-top
    xla_defaults.apply()

# pylint: disable=g-import-not-at-top,wrong-import-position
import jax
import jax.numpy as jnp
from lottery_jax import machine
import torch
import torch.nn.functional as F
from torch import nn

from lottery_jax import loss as loss_lib
from lottery_jax import masks as masks_lib
from lottery_jax import optim, pruning, train
from lottery_jax.models import get_model

# pylint: enable=g-import-not-at-top,wrong-import-position



def load_average() -> str:
  """The 1-minute load average (other processes compete for the cores), if known."""
  try:
    return f"{os.getloadavg()[0]:.2f}"
  except OSError:
    return "unknown"


def machine_description(threads: int) -> list[str]:
  return [
      f"machine: {machine.cpu_name()} ({platform.machine()}), {os.cpu_count()} cores, "
      f"{platform.system()} {platform.release()}",
      f"python {platform.python_version()}, jax {jax.__version__} "
      f"(device: {jax.devices()[0].device_kind}, {jax.device_count()} device(s)), "
      f"torch {torch.__version__} ({threads} threads; "
      f"cuda: {torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'none'})",
  ]


# ---------------------------------------------------------------------------------------------
# lottery_jax side.


def make_jax_side(batch_size: int, seed: int):
  """(step closure, params, masks, batch) for the masked ConvNet-3 step of lottery_jax."""
  model = get_model("convnet", NUM_CLASSES)
  params, batch_stats = train.init_variables(model, jax.random.key(seed), IMAGE_SHAPE)
  masks = masks_lib.init_masks(params)
  for _ in range(PRUNE_ROUNDS):
    masks = pruning.prune(params, masks, PRUNE_FRACTION)
  tx = optim.make_optimizer("adam", LEARNING_RATE, weight_decay=WEIGHT_DECAY)
  state = train.new_state(params, batch_stats, masks, tx)
  step = train.make_train_step(model, tx)
  rng = np.random.default_rng(seed)
  images = rng.standard_normal((batch_size, *IMAGE_SHAPE), dtype=np.float32)
  labels = rng.integers(0, NUM_CLASSES, batch_size).astype(np.int32)
  batch = {"image": jnp.asarray(images), "label": jnp.asarray(labels)}
  key = jax.random.key(seed + 1)
  holder = {"state": state, "metrics": None}

  def run(n: int) -> float:
    """Seconds for n steps, blocking on the last state and metrics."""
    start = time.perf_counter()
    state, metrics = holder["state"], None
    for _ in range(n):
      state, metrics = step(state, batch, key)
    jax.block_until_ready((state, metrics))
    seconds = time.perf_counter() - start
    holder["state"], holder["metrics"] = state, metrics
    return seconds

  loss_fn = jax.jit(lambda p, x, y: loss_lib.cross_entropy(model.apply({"params": p}, x), y))
  initial_loss = float(loss_fn(state.params, batch["image"], batch["label"]))
  return run, holder, state.params, masks, (images, labels), initial_loss


# ---------------------------------------------------------------------------------------------
# PyTorch side.


class TorchConvNet(nn.Module):
  """ConvNet-3 as in lottery_jax.models.convnet, in NCHW."""

  def __init__(self, num_classes=NUM_CLASSES, width=128, depth=3, in_channels=3, size=32):
    super().__init__()
    layers = []
    for _ in range(depth):
      layers += [nn.Conv2d(in_channels, width, 3, padding=1), nn.GroupNorm(width, width),
                 nn.ReLU(), nn.AvgPool2d(2)]
      in_channels, size = width, size // 2
    self.features = nn.Sequential(*layers)
    self.classifier = nn.Linear(width * size * size, num_classes)

  def forward(self, x):
    return self.classifier(torch.flatten(self.features(x), 1))


def _to_torch(x) -> torch.Tensor:
  return torch.from_numpy(np.array(x, dtype=np.float32))


def load_flax_params(model: TorchConvNet, params, masks):
  """Copy flax params into `model`; returns [(weight, float mask)] of the prunable weights."""
  convs = [m for m in model.features if isinstance(m, nn.Conv2d)]
  norms = [m for m in model.features if isinstance(m, nn.GroupNorm)]
  masked = []
  with torch.no_grad():
    for i, (conv, norm) in enumerate(zip(convs, norms)):
      # HWIO -> OIHW.
      conv.weight.copy_(_to_torch(params[f"Conv_{i}"]["kernel"]).permute(3, 2, 0, 1))
      conv.bias.copy_(_to_torch(params[f"Conv_{i}"]["bias"]))
      norm.weight.copy_(_to_torch(params[f"GroupNorm_{i}"]["scale"]))
      norm.bias.copy_(_to_torch(params[f"GroupNorm_{i}"]["bias"]))
      mask = _to_torch(masks[f"Conv_{i}"]["kernel"]).permute(3, 2, 0, 1).contiguous()
      masked.append((conv.weight, mask))
    # flax flattens (B, H, W, C) as h, w, c; torch flattens (B, C, H, W) as c, h, w.
    lin = model.classifier
    c = convs[-1].out_channels
    hw = int(round((lin.in_features // c) ** 0.5))

    def dense(x):
      return _to_torch(x).reshape(hw, hw, c, -1).permute(3, 2, 0, 1).reshape(-1, lin.in_features)

    lin.weight.copy_(dense(params["Dense_0"]["kernel"]))
    lin.bias.copy_(_to_torch(params["Dense_0"]["bias"]))
    masked.append((lin.weight, dense(masks["Dense_0"]["kernel"]).contiguous()))
  return masked


def make_torch_side(params, masks, images, labels, layout: str, compile_model: bool,
                    device: str = "cpu"):
  """(step closure, initial loss) of the equivalent masked PyTorch step on `device`."""
  model = TorchConvNet()
  masked = load_flax_params(model, params, masks)
  model = model.to(device)  # moves the Parameters in place: `masked` still holds them
  masked = [(w, m.to(device)) for w, m in masked]
  x = torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2))).to(device)
  y = torch.from_numpy(labels.astype(np.int64)).to(device)
  if layout == "channels_last":
    model = model.to(memory_format=torch.channels_last)
    x = x.contiguous(memory_format=torch.channels_last)
    # Masks must match their weights' strides for in-place multiplies to stay cheap.
    masked = [(w, m.contiguous(memory_format=torch.channels_last) if m.ndim == 4 else m)
              for w, m in masked]
  weights = [w for w, _ in masked]
  mask_list = [m for _, m in masked]
  optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE, weight_decay=WEIGHT_DECAY)
  forward = torch.compile(model) if compile_model else model
  with torch.no_grad():
    initial_loss = float(F.cross_entropy(model(x), y))

  def step():
    optimizer.zero_grad(set_to_none=True)
    loss = F.cross_entropy(forward(x), y)
    loss.backward()
    with torch.no_grad():
      torch._foreach_mul_([w.grad for w in weights], mask_list)  # pylint: disable=protected-access
      optimizer.step()
      torch._foreach_mul_(weights, mask_list)  # pylint: disable=protected-access
    return loss

  def run(n: int) -> float:
    """Seconds for n steps (on a GPU, up to the last kernel's end)."""
    start = time.perf_counter()
    for _ in range(n):
      step()
    if device == "cuda":
      torch.cuda.synchronize()
    return time.perf_counter() - start

  return run, initial_loss


# ---------------------------------------------------------------------------------------------


def main(args):
  torch.set_num_threads(args.threads)
  if args.torch_device == "auto":
    args.torch_device = "cuda" if torch.cuda.is_available() else "cpu"
  print("\n".join(machine_description(args.threads)))
  print(f"batch {args.batch_size}, {args.rounds} rounds x {args.steps} steps per framework, "
        f"warm-up {args.warmup} steps, torch layout {args.torch_layout}, "
        f"date {datetime.date.today().isoformat()}, load average {load_average()}")
  print(f"XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r}")

  jax_run, jax_holder, params, masks, (images, labels), jax_loss = make_jax_side(
      args.batch_size, args.seed)
  n_params = sum(np.size(p) for p in jax.tree.leaves(params))
  print(f"ConvNet-3: {n_params:,} params, mask sparsity {masks_lib.sparsity(masks):.1%}, "
        f"initial loss {jax_loss:.6f}")

  sides = {}
  if args.only in (None, "jax"):
    sides["lottery_jax"] = jax_run
  if args.only in (None, "torch"):
    layouts = ("nchw", "channels_last") if args.torch_layout == "both" else (args.torch_layout,)
    for layout in layouts:
      for compiled in (False, True) if args.torch_compile else (False,):
        name = "torch.compile" if compiled else "torch"
        if len(layouts) > 1:
          name += f" {layout}"
        run, loss = make_torch_side(params, masks, images, labels, layout, compiled,
                                    args.torch_device)
        if not np.isclose(jax_loss, loss, rtol=1e-4, atol=1e-4):
          sys.exit(f"{name} computes initial loss {loss:.6f}, lottery_jax {jax_loss:.6f}: "
                   "not the same network, not comparable")
        sides[name] = run

  for name, run in list(sides.items()):
    try:
      seconds = run(args.warmup)
    except Exception as e:  # pylint: disable=broad-except
      if not name.startswith("torch.compile"):
        raise
      print(f"warm-up {name} failed, skipping it: {type(e).__name__}: {e}")
      del sides[name]
      continue
    print(f"warm-up {name}: {seconds:.1f} s for {args.warmup} steps")

  rates = {name: [] for name in sides}
  for r in range(args.rounds):
    cells = []
    for name, run in sides.items():
      seconds = run(args.steps)
      rates[name].append(args.steps * args.batch_size / seconds)
      cells.append(f"{name} {rates[name][-1]:.1f}")
    print(f"round {r + 1} (img/s): " + ", ".join(cells), flush=True)
  if "lottery_jax" in sides:
    loss = float(jax_holder["metrics"]["loss"])
    if not np.isfinite(loss):
      sys.exit(f"lottery_jax loss is {loss}")

  print(f"load average at the end {load_average()} (on {os.cpu_count()} cores)")
  medians = {name: statistics.median(v) for name, v in rates.items()}
  width = max(len(name) for name in rates) + 2
  print()
  print(f"{'framework':<{width}} {'median img/s':>12} {'ms/step':>8} {'min img/s':>10} "
        f"{'max img/s':>10}")
  for name, v in rates.items():
    print(f"{name:<{width}} {medians[name]:12.1f} {1e3 * args.batch_size / medians[name]:8.0f} "
          f"{min(v):10.1f} {max(v):10.1f}")
  ratios = {}
  if "lottery_jax" in medians:
    print()
    for name in medians:
      if name != "lottery_jax":
        paired = statistics.median(a / b for a, b in zip(rates["lottery_jax"], rates[name]))
        ratios[name] = paired
        print(f"ratio (lottery_jax / {name}): {medians['lottery_jax'] / medians[name]:.2f}x "
              f"(median of per-round ratios {paired:.2f}x)")
  if args.result_line:
    print("RESULT " + json.dumps({"medians": medians, "ratios": ratios,
                                  "load": load_average()}))


def sweep(args):
  """Each variant of XLA_VARIANTS in a fresh subprocess against eager torch; ratios."""
  names = args.variants.split(",") * args.sweep_repeats
  print("\n".join(machine_description(args.threads)))
  print(f"sweep of {len(names)} runs, batch {args.batch_size}, {args.rounds} rounds x "
        f"{args.steps} steps, date {datetime.date.today().isoformat()}, load average "
        f"{load_average()}, environment XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r}")
  results = []
  for name in names:
    flags, defaults = XLA_VARIANTS[name]
    command = [sys.executable, os.path.abspath(__file__), "--result_line", "--no-torch_compile",
               f"--batch_size={args.batch_size}", f"--steps={args.steps}",
               f"--rounds={args.rounds}", f"--warmup={args.warmup}",
               f"--threads={args.threads}", f"--torch_layout={args.torch_layout}",
               f"--seed={args.seed}", f"--xla_flags={flags}",
               "--xla_defaults" if defaults else "--no-xla_defaults"]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    lines = [x for x in done.stdout.splitlines() if x.startswith("RESULT ")]
    if done.returncode or not lines:
      sys.exit(f"variant {name} failed (exit {done.returncode}):\n{done.stdout}\n{done.stderr}")
    result = json.loads(lines[-1][len("RESULT "):])
    flag_line = [x for x in done.stdout.splitlines() if x.startswith("XLA_FLAGS=")]
    results.append((name, flag_line[0] if flag_line else "", result))
    torch_name = next(iter(result["ratios"]))
    print(f"{name}: lottery_jax {result['medians']['lottery_jax']:.1f} img/s, "
          f"{torch_name} {result['medians'][torch_name]:.1f} img/s, ratio "
          f"{result['ratios'][torch_name]:.2f}x, load {result['load']}; {flag_line[0]}",
          flush=True)
  print()
  print(f"{'variant':<24} {'jax img/s':>9} {'torch img/s':>11} {'ratio':>6}  load")
  for name, _, result in results:
    torch_name = next(iter(result["ratios"]))
    print(f"{name:<24} {result['medians']['lottery_jax']:9.1f} "
          f"{result['medians'][torch_name]:11.1f} {result['ratios'][torch_name]:5.2f}x  "
          f"{result['load']}")


if __name__ == "__main__":
  if ARGS.sweep_xla_options:
    sweep(ARGS)
  else:
    main(ARGS)
