"""The command line every item shares:

    python -m experiments.<item> --preset=cpu|paper [--workdir_root=runs/experiments]
        [--data=CIFAR-10 source] [--data_cifar100=...] [--data_imagenet10=...]
        [--distilled=the CIFAR-10 distilled .npz (MTT set)]
        [--from_runs] [--out_dir=experiments/results/[<preset>/]<item>]

Without --from_runs the item runs (or resumes, or reuses) the lottery runs it needs, then draws;
with it, it only reads finished run directories. Bad input ends with one line on stderr and
exit 2, before any work.
"""

import argparse
import os
import sys

from experiments import page
from experiments import runs as runs_lib

RESULTS = os.path.join(runs_lib.ROOT, "experiments", "results")
# Presets whose pages live directly in RESULTS/<item>; any other preset's go to
# RESULTS/<preset>/<item>, so that drawing an item at a second CPU recipe never replaces the
# committed pages of the first.
TOP_LEVEL_PRESETS = ("cpu", "paper")


def default_out_dir(item_name: str, preset: str) -> str:
  """Where an item's page goes without --out_dir."""
  if preset in TOP_LEVEL_PRESETS:
    return os.path.join(RESULTS, item_name)
  return os.path.join(RESULTS, preset, item_name)


class _Parser(argparse.ArgumentParser):
  def error(self, message):
    fail(self.prog, message)


def fail(prog: str, message: str, status: int = 2):
  """One line `<prog>: error: <message>` on stderr and exit `status` (2: bad input)."""
  print(f"{prog}: error: {message}", file=sys.stderr)
  sys.exit(status)


def parse(item_name: str, argv: list[str]) -> argparse.Namespace:
  p = _Parser(prog=f"experiments.{item_name}", description=__doc__,
              formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--preset", required=True, choices=runs_lib.PRESETS,
                 help="cpu: CPU-scale variant of the configs; cpu_sgd: the same scale in the "
                      "recipe the regime screen chose (the contrast, experiments.contrast); "
                      "paper: the configs as written")
  p.add_argument("--workdir_root", default=runs_lib.DEFAULT_WORKDIR_ROOT,
                 help="run directories live in <workdir_root>/<preset>/<run name>")
  p.add_argument("--data", default=None,
                 help="CIFAR-10 data.source (cpu default: ../shared/data/cifar10-jpeg.tar.gz; "
                      "paper default: the config's, TFDS)")
  p.add_argument("--data_cifar100", default=None, help="CIFAR-100 data.source (default TFDS)")
  p.add_argument("--data_imagenet10", default=None,
                 help="ImageNet-10 class-folder directory or archive (see experiments/fig4.py)")
  p.add_argument("--distilled", default=None,
                 help="the distilled CIFAR-10 set (.npz) distilled pruning uses (default "
                      f"{runs_lib.MTT}: the authors' MTT set, 10 images per class, ZCA)")
  p.add_argument("--from_runs", action="store_true",
                 help="draw from finished run directories only; run nothing")
  p.add_argument("--out_dir", default=None,
                 help="where the figure, table.md and README.md go (default "
                      "experiments/results/<item> at the cpu and paper presets, "
                      "experiments/results/<preset>/<item> at the others)")
  return p.parse_args(argv)


def parse_partial(item_name: str, argv: list[str]) -> tuple[argparse.Namespace, list[str], bool]:
  """`parse` for items that also take `--partial` (with --from_runs: draw from the runs that
  have finished): (args, argv without --partial, partial); --partial without --from_runs is
  refused in one line."""
  partial = "--partial" in argv
  argv = [a for a in argv if a != "--partial"]
  args = parse(item_name, argv)
  if partial and not args.from_runs:
    fail(f"experiments.{item_name}", "--partial draws from finished runs only; add --from_runs")
  return args, argv, partial


def data_sources(args) -> dict[str, str]:
  """{dataset: data.source override} from the flags (the cpu preset's CIFAR-10 archive), and
  'distilled': the distilled set replacing runs.MTT when --distilled is given."""
  cifar10 = args.data or (runs_lib.CIFAR10_ARCHIVE if args.preset.startswith("cpu") else None)
  return {k: v for k, v in (("cifar10", cifar10), ("cifar100", args.data_cifar100),
                            ("imagenet10", args.data_imagenet10),
                            ("distilled", args.distilled)) if v}


def main(item, argv: list[str] | None = None) -> str:
  """Run `item` (a module with NAME, TITLE, CLAIM, runs(preset), draw(loaded, out_dir));
  returns the README.md path."""
  argv = sys.argv[1:] if argv is None else argv
  prog = f"experiments.{item.NAME}"
  args = parse(item.NAME, argv)
  refusal = getattr(item, "refuse", lambda preset: None)(args.preset)
  if refusal:
    fail(prog, refusal)
  specs = item.runs(args.preset)
  data = data_sources(args)
  dirs = {role: runs_lib.run_dir(args.workdir_root, args.preset, spec)
          for role, spec in specs.items()}
  if not args.from_runs:
    for role, spec in specs.items():
      if role not in getattr(item, "OPTIONAL", ()):
        runs_lib.ensure(spec, dirs[role], data)
  loaded = {}
  for role, spec in specs.items():
    if runs_lib.is_finished(dirs[role]) or role not in getattr(item, "OPTIONAL", ()):
      try:
        loaded[role] = runs_lib.load(spec, dirs[role], data)
      except runs_lib.RunMissing as e:
        fail(prog, str(e))
  out_dir = args.out_dir or default_out_dir(item.NAME, args.preset)
  os.makedirs(out_dir, exist_ok=True)
  try:
    drawn = item.draw(loaded, out_dir)
  except runs_lib.RunMissing as e:
    fail(prog, str(e))
  command = runs_lib.shell_join(["python", "-m", prog, f"--preset={args.preset}"]
                       + ([f"--workdir_root={args.workdir_root}"]
                          if args.workdir_root != runs_lib.DEFAULT_WORKDIR_ROOT else [])
                       + [f"--{k}={v}" for k, v in (("data", args.data),
                                                     ("data_cifar100", args.data_cifar100),
                                                     ("data_imagenet10", args.data_imagenet10),
                                                     ("distilled", args.distilled),
                                                     ("out_dir", args.out_dir))
                          if v])
  path = page.write(out_dir, item, drawn, loaded, args.preset, args.workdir_root, data, command)
  print(f"{prog}: wrote {path}")
  for line in drawn.findings:
    print(f"  {line}")
  return path
