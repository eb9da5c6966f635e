"""The regime screen of issues #22 and #33: training recipes under which IMP at initialization
(k = 0) is linearly-mode unstable, on ConvNet-3 (width 32) / CIFAR-10 at CPU scale. Round one
(issue #22) screened 5-epoch recipes at batch 256; round two (issue #33) longer, noisier ones
and the authors' current recipe, judged on the validation split.

    python -m experiments.regime --preset=cpu                        # run or resume, then draw
    python -m experiments.regime --preset=cpu --from_runs            # redraw; every run needed
    python -m experiments.regime --preset=cpu --from_runs --partial  # redraw what has finished

Each recipe x seed is one lottery run (configs/cifar10_convnet.py:cpu: a stratified 20,000 of
the train split, 5,000 held out for validation) cut to what the screen measures: IMP only,
2 rounds of 59% (59.0% at round 1, 83.2% at round 2: the two sparsities the verdict reads, so
6 trainings a run instead of the 10 that 4 rounds of 36% would take), LMC pairs for the dense
network and both IMP rounds, no landscapes, Hessians or mask statistics. The seeds differ in
every named seed (as experiments/tpu/sweep.sh). The page draws the midpoint train-loss and
test-error barriers against the recipe, tables the validation-error barriers beside them, and
gives the verdict per recipe and the contrast's recipe (`choice`). `--partial` (with
`--from_runs`) draws from the runs that have finished and labels the page PARTIAL.
"""

import json
import os
import sys
import types
from typing import NamedTuple

import numpy as np
from matplotlib.figure import Figure

from lottery_jax import config_blocks

from experiments import cli, fig3, page
from experiments import runs as runs_lib
from experiments import verdict

NAME = "regime"
TITLE = "Regime screen: where IMP at initialization is unstable (ConvNet-3 width 32, CIFAR-10)"
CLAIM = ("Not a figure of the paper, but the condition its central contrast needs: the paper "
         "reports barriers for the dense network and for IMP's subnetworks rewound to "
         "initialization, and none for subnetworks pruned with distilled data. That contrast "
         "can only be tested where IMP at k = 0 is unstable. Frankle et al. (2020) found it "
         "unstable with SGD at high learning rates without warm-up, and stable with warm-up or "
         "low rates; our earlier runs with Adam 8e-4 (our CIFAR base, taken from an earlier "
         "notebook version of the authors' code; their current code trains with SGD: configs "
         ":authors) found every IMP pair "
         "connected. This screen looks for a recipe where IMP k = 0 is unstable (issue #22).")

SEEDS = (0, 1)
SEED_NAMES = tuple(config_blocks.seeds().keys())  # Every named seed, as sweep.sh varies them.
# The sparsities the verdict reads (rounds 1 and 2 of 59%); a record counts for a target when
# its sparsity is within SPARSITY_TOLERANCE of it.
TARGETS = (0.59, 0.832)
SPARSITY_TOLERANCE = 0.02
EPOCHS = 5.0  # The screen's training length (the cpu preset trains 10 epochs).


CPU = "configs/cifar10_convnet.py:cpu"


class Recipe(NamedTuple):
  """A training recipe of the screen.

  Attributes:
    name: the run directory's part (c10_regime_<name>_s<seed>).
    label: how tables and figures name it.
    overrides: `--config.train.*` (and data) flags on top of `config`.
    config: the config file and variants the run starts from (the cpu preset; the authors'
      recipe on top of it for round two's `:cpu,authors`).
    screen_round: 1 (issue #22, 2026-12-03: 390 steps of 256, barriers on train and test) or
      2 (issue #33: longer, noisier recipes, also measured on the validation split).
    estimate: idle 2-core CPU time of one run, for the page.
  """
  name: str
  label: str
  overrides: tuple[str, ...]
  config: str = CPU
  screen_round: int = 1
  estimate: str = ("about 12 minutes on 2 idle CPU cores (6 trainings of about 390 steps, 3 "
                   "LMC paths)")


_LENGTH = (f"--config.train.epochs={EPOCHS}",)
_SGD = ("--config.train.optimizer=sgd", "--config.train.momentum=0.9",
        "--config.train.weight_decay=5e-4")
RECIPES = (
    Recipe("adam", "Adam 8e-4 (our base)", _LENGTH),
    Recipe("sgd_lr0.05", "SGD 0.05", (*_SGD, "--config.train.learning_rate=0.05", *_LENGTH)),
    Recipe("sgd_lr0.1", "SGD 0.1", (*_SGD, "--config.train.learning_rate=0.1", *_LENGTH)),
    Recipe("sgd_lr0.1_warmup", "SGD 0.1 + warm-up",
           (*_SGD, "--config.train.learning_rate=0.1", "--config.train.warmup_epochs=2.0",
            *_LENGTH)),
    # Memorisation: the Adam base recipe on a small stratified subset, long enough to fit it;
    # LMC's train loss on the whole subset (lmc_examples 0).
    Recipe("memorise", "Adam 8e-4, 1,000 images",
           ("--config.data.train_examples=1000", "--config.train.batch_size=128",
            "--config.train.epochs=100.0", "--config.stability.lmc_examples=0")),
    # Round two (issue #33). The authors' current code (configs/presets.py authors_variant) at
    # 10 and 20 of its 300 epochs, its MultiStepLR's whole-epoch decays (2E//3, 5E//6) as
    # fractions; Frankle et al.'s batch 128 and a batch of 64, SGD 0.1, lr x0.1 at 1/2 and 3/4.
    *(Recipe(f"authors_e{e}", f"authors' SGD 0.01, batch 64, DiffAug + CutMix, {e} epochs",
             (f"--config.train.epochs={e}.0", f"--config.train.decay_at={decay}"),
             config=f"{CPU},authors", screen_round=2,
             estimate=f"about {m} minutes on 2 idle CPU cores (6 trainings of {e * 312:,} "
                      "steps of 64, 3 LMC paths; an estimate from bench/README.md)")
      for e, decay, m in ((10, "(0.6,0.8)", 55), (20, "(0.65,0.8)", 110))),
    *(Recipe(f"sgd_lr0.1_b{b}_e{e}", f"SGD 0.1, batch {b}, {e} epochs",
             (*_SGD, "--config.train.learning_rate=0.1", f"--config.train.batch_size={b}",
              "--config.train.decay_at=(0.5,0.75)", "--config.train.decay_factor=0.1",
              f"--config.train.epochs={e}.0"), screen_round=2,
             estimate=f"about {m} minutes on 2 idle CPU cores (6 trainings of "
                      f"{e * (20000 // b):,} steps of {b}, 3 LMC paths; an estimate from "
                      "bench/README.md)")
      for b, e, m in ((128, 10, 35), (128, 20, 70), (64, 10, 45))),
)
# Run order: round two first (round one finished on 2026-12-03), the recipe a single run found
# unstable first, the cheapest next; within a round the recipes the literature expects to be
# unstable first, so that a screen cut short has both seeds of those.
RUN_ORDER = ("sgd_lr0.1_b128_e10", "authors_e10", "sgd_lr0.1_b64_e10", "sgd_lr0.1_b128_e20",
             "authors_e20", "sgd_lr0.1", "sgd_lr0.05", "sgd_lr0.1_warmup", "memorise", "adam")
SCREEN = ("--config.lottery.producers=('imp',)", "--config.lottery.rounds=2",
          "--config.lottery.fraction=0.59", "--config.stability.analyses=('lmc',)",
          "--config.stability.lmc_producers=('dense','imp')",
          "--config.stability.num_alphas=11",
          # A checkpoint every 100 steps (the preset's 400 is past a 390-step training), so a
          # run stopped mid-training resumes with little lost.
          "--config.train.checkpoint_every=100")
PRODUCERS = ("dense", "IMP 59%", "IMP 83%")
# Issue #22's question 4 (is stability specific to the masks, or does any sparsity give it?):
# random pruning with IMP's layerwise sparsity of the same round, under the recipe the
# literature expects to be least stable (SGD 0.1 without warm-up), in both seeds. IMP is in
# the run (random masks copy its layerwise sparsity), but only the random masks get LMC pairs.
CONTROL_RECIPE = "sgd_lr0.1"
CONTROL = ("--config.lottery.producers=('imp','random')",
           "--config.lottery.random_reference=imp",
           "--config.stability.lmc_producers=('random',)")
CONTROL_PRODUCERS = ("random 59%", "random 83%")


def spec(recipe: Recipe, seed: int) -> runs_lib.RunSpec:
  seeds = tuple(f"--config.seeds.{s}={seed}" for s in SEED_NAMES)
  return runs_lib.RunSpec(
      f"c10_regime_{recipe.name}_s{seed}", recipe.config,
      (*SCREEN, *recipe.overrides, *seeds), label=f"{recipe.label}, seed {seed}",
      estimate=recipe.estimate)


def control_spec(seed: int) -> runs_lib.RunSpec:
  """The random-pruning control run of CONTROL_RECIPE: its screen run with CONTROL on top."""
  recipe = next(r for r in RECIPES if r.name == CONTROL_RECIPE)
  s = spec(recipe, seed)
  return s._replace(name=f"c10_regime_{recipe.name}_random_s{seed}",
                    overrides=runs_lib.with_overrides(s.overrides, *CONTROL),
                    label=f"{recipe.label}, random pruning, seed {seed}",
                    estimate="about 15 minutes on 2 idle CPU cores (29.5 for both seeds, "
                             "2026-12-03)")


def roles() -> dict[str, tuple[Recipe, int]]:
  """{role: (recipe, seed)} of the screen, in run order."""
  by_name = {r.name: r for r in RECIPES}
  return {f"{name}_s{seed}": (by_name[name], seed) for name in RUN_ORDER for seed in SEEDS}


def control_roles() -> dict[str, int]:
  """{role: seed} of the random-pruning control, run after the screen."""
  return {f"{CONTROL_RECIPE}_random_s{seed}": seed for seed in SEEDS}


def runs(preset: str) -> dict[str, runs_lib.RunSpec]:
  del preset  # refuse() lets only the cpu preset through.
  return {**{role: spec(recipe, seed) for role, (recipe, seed) in roles().items()},
          **{role: control_spec(seed) for role, seed in control_roles().items()}}


def refuse(preset: str) -> str | None:
  if preset != "cpu":
    return ("the regime screen has only a cpu preset (ConvNet-3 width 32); its width-128 / "
            "100-epoch version belongs on an accelerator and is not written yet")
  return None


class Point(NamedTuple):
  """One producer of one run: its LMC pair's barriers and the network's accuracies.

  Attributes:
    sparsity: the mask's sparsity.
    midpoint: midpoint train-loss barrier (nats); error: test-error barrier (fraction).
    val_accuracy: validation accuracy of network A (None without a validation split).
    train_accuracy, train_loss: on the LMC train sample, mean of the pair's two ends.
    val_error: validation-error barrier (fraction); None for pairs measured before LMC read
      the validation split (the screen's round one).
  """
  sparsity: float
  midpoint: float
  error: float
  val_accuracy: float | None
  train_accuracy: float | None
  train_loss: float
  val_error: float | None = None

  @property
  def rule_error(self) -> float:
    """The error barrier the rule reads: validation's, or test's for a round-one pair (marked
    on the page: it has no validation barrier)."""
    return self.error if self.val_error is None else self.val_error


def unstable(p: Point | None) -> bool:
  """The instability of one pair: a midpoint train-loss barrier above the noise floor
  (fig3.TRAIN_LOSS_FLOOR) and a validation-error barrier of at least fig3.CONNECTED_ERROR
  (issue #33; issue #22's round one, without validation barriers, read the test split)."""
  return (p is not None and p.midpoint > fig3.TRAIN_LOSS_FLOOR
          and p.rule_error >= fig3.CONNECTED_ERROR)


def _lmc_file(run: runs_lib.Run, producer: str, r: int) -> dict:
  path = os.path.join(run.round_dir(producer, r), "lmc.json")
  try:
    with open(path) as f:
      return json.load(f)
  except (OSError, ValueError) as e:
    raise runs_lib.RunMissing(f"{path} cannot be read ({' '.join(str(e).split())}); rerun the "
                              f"item without --from_runs to resume {run.dir}") from None


def points(run: runs_lib.Run, producer: str = "imp") -> list[Point]:
  """Every LMC pair of `producer` in the run, round 0 (dense) first where it has one."""
  lmc = (run.results.get("stability") or {}).get("lmc") or {}
  if producer not in lmc:
    raise runs_lib.RunMissing(f"run {run.dir} has no LMC analysis of {producer}")
  producers = run.results["producers"]
  out = []
  for rec in lmc[producer]:
    r = rec["round"]
    acc = next((x for x in producers[producer] if x["round"] == r), producers["dense"][0])
    train = _lmc_file(run, producer, r)["train"]
    out.append(Point(rec["sparsity"], rec["train_loss_midpoint_barrier"],
                     rec["test_error_barrier"], acc.get("val_accuracy_mean"),
                     float(np.mean([train["accuracy"][0], train["accuracy"][-1]])),
                     float(np.mean([train["loss"][0], train["loss"][-1]])),
                     rec.get("val_error_barrier")))
  return out


def screened(pts: list[Point]) -> list[Point | None]:
  """[dense, at 59%, at 83%] of a producer's points (None where no round is near, and for
  dense when the points have no round 0, as the random control's)."""
  dense = pts[0] if pts and pts[0].sparsity == 0.0 else None
  out = [dense]
  for target in TARGETS:
    near = [p for p in pts if abs(p.sparsity - target) <= SPARSITY_TOLERANCE]
    out.append(near[0] if near else None)
  return out


class RecipeVerdict(NamedTuple):
  """Issue #22's verdict on one recipe.

  Attributes:
    seeds: seeds with a finished run.
    unstable_seeds: per screened IMP sparsity, how many of those seeds are unstable there.
    dense_seeds: how many of them have an unstable dense pair.
    text: 'unstable', 'stable', 'unstable in 1 of 2 seeds', or 'incomplete (...)'.
  """
  seeds: int
  unstable_seeds: list[int]
  dense_seeds: int
  text: str


def recipe_verdict(per_seed: list[list[Point | None]]) -> RecipeVerdict:
  """Unstable when, at one screened sparsity (>= 59%), every seed of SEEDS is unstable."""
  counts = [sum(unstable(s[i]) for s in per_seed) for i in range(1, len(TARGETS) + 1)]
  dense = sum(unstable(s[0]) for s in per_seed)
  n = len(per_seed)
  if any(c == len(SEEDS) for c in counts) and n == len(SEEDS):
    text = "unstable"
  elif n < len(SEEDS) and not any(counts):
    text = f"incomplete ({n} of {len(SEEDS)} seeds, none unstable yet)"
  elif n < len(SEEDS):
    text = f"incomplete ({n} of {len(SEEDS)} seeds, unstable so far)"
  elif any(counts):
    text = f"unstable in {max(counts)} of {n} seeds: not unstable"
  else:
    text = "stable"
  return RecipeVerdict(n, counts, dense, text)


ROUND_MARK = {1: "1 (no validation barrier)", 2: "2"}
RULE_READS = {1: "test (round one)", 2: "validation"}


def _f(x, digits=3, scale=1.0):
  return "n/a" if x is None else f"{scale * x:.{digits}f}"


def _by_recipe(loaded: dict[str, runs_lib.Run]) -> dict[str, dict[int, list[Point]]]:
  """{recipe name: {seed: points}} of the finished runs, recipes in RECIPES order."""
  found = {}
  for role, (recipe, seed) in roles().items():
    if role in loaded:
      found.setdefault(recipe.name, {})[seed] = points(loaded[role])
  return {r.name: found[r.name] for r in RECIPES if r.name in found}


def _setting(run: runs_lib.Run) -> str:
  """The recipe as run, from config.json."""
  t = run.config["train"]
  opt = (f"SGD lr {t['learning_rate']:g}, momentum {t['momentum']:g}"
         if t["optimizer"] == "sgd" else f"{t['optimizer'].capitalize()} lr "
         f"{t['learning_rate']:g}")
  parts = [opt, f"weight decay {t['weight_decay']:g}",
           f"warm-up {t['warmup_epochs']:g} epochs" if t["warmup_epochs"] else "no warm-up",
           f"{t['schedule']} schedule", f"batch {t['batch_size']}",
           (f"{t['num_steps']} steps (train.num_steps)" if t.get("num_steps") else
            f"{t['epochs']:g} epochs = {run.results.get('real_train_steps')} steps"),
           f"{run.results.get('num_train_examples'):,} train images"
           if isinstance(run.results.get("num_train_examples"), int) else ""]
  return ", ".join(p for p in parts if p)


def _figure(by_recipe, controls, path: str) -> None:
  """Barrier against recipe, per producer (the random control beside IMP under its recipe):
  seeds as hollow markers, their mean as a bar."""
  labels = {r.name: r.label for r in RECIPES}
  names = list(by_recipe)
  fig = Figure(figsize=(max(6.0, 1.6 * len(names) + 2), 6.4))
  axes = fig.subplots(2, 1, sharex=True)
  colors = ("tab:gray", "tab:orange", "tab:red", "tab:cyan", "tab:blue")
  slots = [(k, producer, lambda name, k=k: [screened(p)[k] for p in by_recipe[name].values()])
           for k, producer in enumerate(PRODUCERS)]
  slots += [(k + 3, producer, lambda name, k=k: [screened(p)[k + 1] for p in controls.values()]
             if name == CONTROL_RECIPE else [])
            for k, producer in enumerate(CONTROL_PRODUCERS)]
  width = 0.8 / len(slots)
  for ax, (field, scale, ylabel, line) in zip(axes, (
      ("midpoint", 1.0, "midpoint train-loss barrier (nats)", fig3.TRAIN_LOSS_FLOOR),
      ("rule_error", 100.0, "validation-error barrier (points;\nround one: test)",
       100 * fig3.CONNECTED_ERROR))):
    for k, producer, chosen in slots:
      color, drawn = colors[k], False
      for i, name in enumerate(names):
        values = [scale * getattr(p, field) for p in chosen(name) if p is not None]
        shown = [j for j, _, c in slots if any(p is not None for p in c(name))]
        x = i + (shown.index(k) - (len(shown) - 1) / 2) * width if k in shown else i
        if values:
          ax.bar(x, np.mean(values), width=0.9 * width, color=color, alpha=0.35,
                 label=None if drawn else producer)
          drawn = True
          ax.scatter([x] * len(values), values, facecolors="none", edgecolors=color, s=28,
                     zorder=3)
    ax.axhline(line, color="k", ls="--", lw=0.8)
    ax.set_ylabel(ylabel, fontsize=8)
    ax.grid(axis="y", alpha=0.3)
  axes[0].legend(fontsize=7, title="bars: mean over seeds; circles: seeds", title_fontsize=7,
                 ncol=2)
  axes[1].set_xticks(range(len(names)))
  axes[1].set_xticklabels([labels[n] for n in names], fontsize=8, rotation=15)
  fig.tight_layout()
  fig.savefig(path, dpi=120)


def _sparsity_figure(by_recipe, path: str) -> None:
  """Both barriers against sparsity (every round), one line per recipe and seed."""
  labels = {r.name: r.label for r in RECIPES}
  fig = Figure(figsize=(9.6, 3.6))
  axes = fig.subplots(1, 2)
  for ax, field, scale, ylabel, line in (
      (axes[0], "midpoint", 1.0, "midpoint train-loss barrier (nats)", fig3.TRAIN_LOSS_FLOOR),
      (axes[1], "rule_error", 100.0, "validation-error barrier (points; round one: test)",
       100 * fig3.CONNECTED_ERROR)):
    for i, (name, seeds) in enumerate(by_recipe.items()):
      for seed, pts in seeds.items():
        ax.plot([100 * p.sparsity for p in pts], [scale * getattr(p, field) for p in pts],
                color=f"C{i}", marker=".", ls="-" if seed == SEEDS[0] else ":",
                label=labels[name] if seed == min(seeds) else None)
    ax.axhline(line, color="k", ls="--", lw=0.8)
    ax.set_xlabel("sparsity (%; 0 = dense)")
    ax.set_ylabel(ylabel, fontsize=8)
    ax.grid(alpha=0.3)
  axes[0].legend(fontsize=7)
  fig.suptitle(f"solid: seed {SEEDS[0]}; dotted: the other seed", fontsize=8)
  fig.tight_layout()
  fig.savefig(path, dpi=120)


def draw(loaded: dict[str, runs_lib.Run], out_dir: str) -> page.Drawn:
  if not loaded:
    raise runs_lib.RunMissing("no run of the screen has finished; run the item without "
                              "--from_runs to make them")
  by_recipe = _by_recipe(loaded)
  controls = {seed: points(loaded[role], "random") for role, seed in control_roles().items()
              if role in loaded}
  labels = {r.name: r.label for r in RECIPES}
  figures = ["regime_barriers.png", "regime_sparsity.png"]
  _figure(by_recipe, controls, os.path.join(out_dir, figures[0]))
  _sparsity_figure(by_recipe, os.path.join(out_dir, figures[1]))

  barrier_rows, acc_rows, verdict_rows, verdicts = [], [], [], {}
  rounds = {r.name: r.screen_round for r in RECIPES}
  for name, seeds in by_recipe.items():
    per_seed = [screened(pts) for pts in seeds.values()]
    for seed, s in zip(seeds, per_seed):
      barrier_rows.append([labels[name], str(seed), ROUND_MARK[rounds[name]]]
                          + [_f(p and p.midpoint) for p in s]
                          + [_f(p and p.val_error, 2, 100) for p in s]
                          + [_f(p and p.error, 2, 100) for p in s])
      acc_rows.append([labels[name], str(seed)]
                       + [page.pct(p and p.val_accuracy, 2) for p in s]
                       + [page.pct(p and p.train_accuracy, 2) for p in s]
                       + [_f(s[0].train_loss)])
    if len(per_seed) > 1:
      cells = []
      for field, scale, digits in (("midpoint", 1.0, 3), ("val_error", 100.0, 2),
                                   ("error", 100.0, 2)):
        for k in range(len(PRODUCERS)):
          values = [getattr(s[k], field) for s in per_seed
                    if s[k] is not None and getattr(s[k], field) is not None]
          cells.append(verdict.spread(values).text(scale, digits) if values else "n/a")
      barrier_rows.append([f"**{labels[name]}**", "mean ± std", ROUND_MARK[rounds[name]]]
                          + cells)
    v = verdicts[name] = recipe_verdict(per_seed)
    verdict_rows.append([labels[name], _setting(loaded[f"{name}_s{min(seeds)}"]),
                         RULE_READS[rounds[name]], f"{v.dense_seeds} of {v.seeds}"]
                        + [f"{c} of {v.seeds}" for c in v.unstable_seeds] + [f"**{v.text}**"])
  table = page.table(
      ["recipe", "seed", "screen round", "midpoint train-loss barrier: dense", "IMP 59%",
       "IMP 83%", "validation-error barrier (points): dense", "IMP 59%", "IMP 83%",
       "test-error barrier (points): dense", "IMP 59%", "IMP 83%"], barrier_rows)
  table += "\n" + page.table(
      ["recipe", "seed", "val accuracy: dense", "IMP 59%", "IMP 83%", "train accuracy: dense",
       "IMP 59%", "IMP 83%", "train loss: dense"], acc_rows)
  table += "\n" + page.table(
      ["recipe", "settings (as run)", "error barrier read", "dense unstable", "IMP 59% unstable",
       "IMP 83% unstable", "verdict"], verdict_rows, "lllrrrl")
  if controls:
    table += "\n" + _control_table(controls, by_recipe.get(CONTROL_RECIPE, {}), labels)
  table += ("\nBarriers of each run's LMC pairs (one replicate per seed; seeds differ in every "
            "named seed). Midpoint train-loss barrier: L(0.5) - mean(L(0), L(1)) on the run's "
            "stratified train sample (seeds.analysis); test-error barrier: the largest rise of "
            "test error over the straight line between the ends, on the whole test split. "
            "Train accuracy and loss: the same train sample, mean of the pair's two networks. "
            "Validation accuracy and validation-error barrier: on the held-out validation split "
            "(5,000 stratified train images). "
            f"A pair is unstable when its midpoint barrier exceeds {fig3.TRAIN_LOSS_FLOOR} nats "
            f"and its validation-error barrier is at least {100 * fig3.CONNECTED_ERROR:.0f} "
            "points (issue #33); round one's pairs (issue #22, 2026-12-03) were measured before "
            "LMC read the validation split, so their rows show 'n/a' there and their verdicts "
            "read the test-error barrier, as they did then. A recipe is unstable when IMP is "
            "unstable at one screened sparsity (>= 59%) in every seed.\n")
  return page.Drawn(figures, table,
                    _findings(loaded, by_recipe, verdicts, labels, controls))


def _control_table(controls, imp_seeds, labels) -> str:
  """Random pruning against IMP under CONTROL_RECIPE, per seed, both barriers at 59% / 83%."""
  rows, both = [], {}
  for seed, pts in controls.items():
    rand = screened(pts)[1:]
    imp = screened(imp_seeds[seed])[1:] if seed in imp_seeds else [None] * len(TARGETS)
    cells = [_f(p and p.midpoint) for p in (*rand, *imp)]
    cells += [_f(p and p.error, 2, 100) for p in (*rand, *imp)]
    rows.append([labels[CONTROL_RECIPE], str(seed)] + cells
                + [page.pct(p and p.val_accuracy, 2) for p in rand])
    both[seed] = (rand, imp)
  if len(both) > 1:
    cells = []
    for field, scale, digits in (("midpoint", 1.0, 3), ("error", 100.0, 2)):
      for which in (0, 1):
        for k in range(len(TARGETS)):
          values = [getattr(b[which][k], field) for b in both.values()
                    if b[which][k] is not None]
          cells.append(verdict.spread(values).text(scale, digits) if values else "n/a")
    rows.append([f"**{labels[CONTROL_RECIPE]}**", "mean ± std"] + cells + ["", ""])
  return page.table(
      ["recipe", "seed", "midpoint barrier: random 59%", "random 83%", "IMP 59%", "IMP 83%",
       "test-error barrier (points): random 59%", "random 83%", "IMP 59%", "IMP 83%",
       "val accuracy: random 59%", "random 83%"], rows) + (
      "\nControl: random masks with IMP's layerwise sparsity of the same round and seed "
      "(lottery.random_reference = imp), trained from the same initialization under the same "
      "recipe; IMP's columns are the screen's runs of that seed.\n")


def _state(per_seed: list[list[Point | None]]) -> str:
  """recipe_verdict's rule for one producer's screened points: 'unstable', 'stable' (no
  unstable sparse pair) or 'mixed'."""
  v = recipe_verdict(per_seed)
  return "unstable" if v.text == "unstable" else "mixed" if any(v.unstable_seeds) else "stable"


def random_control_sentence(controls, imp_seeds) -> str | None:
  """Issue #22's question 4 in one sentence: do random masks give stable pairs too?"""
  if len(controls) < len(SEEDS) or any(s not in imp_seeds for s in controls):
    return None
  rand = _state([screened(p) for p in controls.values()])
  imp = _state([screened(imp_seeds[s]) for s in controls])
  head = (f"random pruning with IMP's layerwise sparsity is {rand} at 59% / 83% in "
          f"{len(SEEDS)} seeds, IMP {imp}. ")
  if rand == "stable" and imp != "stable":
    return head + ("Random masks are stable where IMP's are not: at the same layerwise "
                   "sparsity, IMP's masks are the less stable ones.")
  if rand == "stable":
    return head + ("Random masks give stable pairs, so in this regime sparsity alone "
                   "stabilises training: a stable pair says nothing specific about IMP's or "
                   "distilled data's masks.")
  if rand == "unstable" and imp == "stable":
    return head + ("Here stability comes from IMP's masks, not from sparsity alone: the "
                   "regime can tell masks apart.")
  if rand == "unstable":
    return head + "The regime destabilises sparse networks whatever their mask."
  return head + "Not decided at this number of seeds."


def _findings(loaded, by_recipe, verdicts, labels, controls) -> list[str]:
  out = []
  missing = [role for role in roles() if role not in loaded]
  if missing:
    out.append(f"**PARTIAL**: {len(roles()) - len(missing)} of {len(roles())} screen runs "
               "finished; missing "
               f"{', '.join(missing)}. The verdicts of recipes without both seeds are "
               "incomplete. Rerun the command under Reproduce (without --from_runs) to resume "
               "them.")
  out.append("Scale: ConvNet-3 width 32 on CIFAR-10 (JPEG copy, a stratified 20,000 of the "
             "train split, 5,000 held out for validation), IMP at k = 0 to 83.2% in 2 rounds of "
             f"59%. Round one (issue #22, 2026-12-03, 1:59 h on 2 idle CPU cores): {EPOCHS:g} "
             "epochs of 256 per training, the memorisation recipe 100 epochs on 1,000 images. "
             "Round two (issue #33): 10 and 20 epochs at batches 64 and 128, and the authors' "
             "current recipe (SGD 0.01, batch 64, IDC's DiffAug and CutMix on half the batches) "
             "at 10 and 20 of its 300 epochs and width 32 instead of their 128. Each recipe's "
             "settings, as run, are in the last table.")
  out.append(f"Rule: unstable = midpoint train-loss barrier above {fig3.TRAIN_LOSS_FLOOR} nats "
             f"and validation-error barrier of at least {100 * fig3.CONNECTED_ERROR:.0f} points, "
             "at 59% or 83% sparsity, in both seeds (round one's recipes, measured before the "
             "validation barrier existed: the test-error barrier, as issue #22 ruled).")
  for name, v in verdicts.items():
    mean = lambda k, f: np.mean([getattr(screened(p)[k], f) for p in by_recipe[name].values()
                                 if screened(p)[k] is not None] or [np.nan])
    out.append(f"{labels[name]}: {v.text}. Mean midpoint barrier dense / IMP 59% / IMP 83%: "
               f"{mean(0, 'midpoint'):.3f} / {mean(1, 'midpoint'):.3f} / "
               f"{mean(2, 'midpoint'):.3f} nats; test-error barrier "
               f"{100 * mean(0, 'error'):.2f} / {100 * mean(1, 'error'):.2f} / "
               f"{100 * mean(2, 'error'):.2f} points; dense validation accuracy "
               f"{100 * mean(0, 'val_accuracy'):.2f}%.")
  out.append(choice(loaded, by_recipe, verdicts, labels))
  sentence = random_control_sentence(controls, by_recipe.get(CONTROL_RECIPE, {}))
  if sentence:
    out.append(f"Random-pruning control under {labels[CONTROL_RECIPE]}: {sentence}")
  else:
    out.append(f"Random-pruning control under {labels[CONTROL_RECIPE]}: {len(controls)} of "
               f"{len(control_roles())} runs finished (it runs after the screen); rerun the "
               "command under Reproduce (without --from_runs) to make them.")
  out.append("Choices: recipes are compared on validation accuracy and train quantities "
             "only; test accuracy enters no choice and no table (the run list under Reproduce "
             "names each run's dense test accuracy as its summary). The test-error barrier "
             "enters only round one's verdicts (issue #22's definition of instability); round "
             "two's verdicts and the contrast's recipe read the validation split.")
  return out


def cost(run: runs_lib.Run) -> int:
  """Examples one real training of the run processes (steps x batch): what 'cheapest' means
  first (then the recipe's mean wall time: batch 64 with DiffAug costs more per example)."""
  return int(run.results.get("real_train_steps") or 0) * int(run.config["train"]["batch_size"])


def choice(loaded, by_recipe, verdicts, labels) -> str:
  """Issue #33's choice of the contrast's recipe, on validation barriers only: the cheapest
  recipe under which IMP k = 0 is unstable (in every seed, at 59% or 83%); without one, the
  recipe with IMP's largest mean validation-error barrier, said as such. Round one's recipes,
  which have no validation barrier, are not eligible."""
  rounds = {r.name: r.screen_round for r in RECIPES}
  eligible = [n for n in by_recipe if rounds[n] == 2]
  unfinished = any(role not in loaded for role in roles())
  if not eligible:
    return ("No round-two recipe has finished: the contrast's recipe is not chosen yet (round "
            "one's recipes have no validation barrier and are not eligible).")
  runs_of = lambda n: [loaded[f"{n}_s{s}"] for s in by_recipe[n]]
  unstable_ones = [n for n in eligible if verdicts[n].text == "unstable"]
  if unstable_ones:
    best = min(unstable_ones, key=lambda n: (min(cost(r) for r in runs_of(n)), np.mean(
        [r.results.get("wall_time_s", np.inf) for r in runs_of(n)])))
    return (f"IMP k = 0 is unstable (validation rule, every seed) under "
            f"{', '.join(labels[n] for n in unstable_ones)}. The cheapest, {labels[best]} "
            f"({min(cost(r) for r in runs_of(best)):,} examples per training), is the "
            "contrast's recipe." + (" The screen is not complete: a cheaper recipe may "
                                    "still qualify." if unfinished else ""))

  def largest(n):
    values = [[s[k].val_error for s in (screened(p) for p in by_recipe[n].values())
               if s[k] is not None and s[k].val_error is not None] for k in (1, 2)]
    return max((float(np.mean(v)) for v in values if v), default=float("-inf"))

  best = max(eligible, key=largest)
  head = ("No round-two recipe among the finished runs makes IMP k = 0 unstable in every seed"
          if unfinished else "No recipe makes IMP k = 0 unstable in every seed")
  return (f"{head}. By the rule written before the runs, the contrast then runs in the recipe "
          f"with IMP's largest mean validation-error barrier: {labels[best]} "
          f"({100 * largest(best):.2f} points), where IMP is not unstable, so the contrast "
          "there can show at most that distilled masks are not less stable than IMP's.")


def main(argv: list[str] | None = None) -> str:
  """cli.main, plus `--partial`: with --from_runs, draw from the finished runs only."""
  args, argv, partial = cli.parse_partial(NAME, list(sys.argv[1:] if argv is None else argv))
  prog = f"experiments.{NAME}"
  if args.from_runs and not partial and refuse(args.preset) is None:
    specs = runs(args.preset)
    missing = [role for role in roles() if not runs_lib.is_finished(
        runs_lib.run_dir(args.workdir_root, args.preset, specs[role]))]
    if missing:
      cli.fail(prog, f"{len(missing)} of {len(roles())} screen runs have not finished "
                     f"({', '.join(missing)}); run the item without --from_runs to make them, "
                     "or add --partial to draw from the finished ones")
  item = sys.modules[__name__]
  if args.from_runs:  # The control is drawn when finished; with --partial, any run is.
    item = types.SimpleNamespace(NAME=NAME, TITLE=TITLE + (" (PARTIAL)" if partial else ""),
                                 CLAIM=CLAIM, runs=runs, refuse=refuse, draw=draw,
                                 OPTIONAL=tuple(runs(args.preset) if partial
                                                else control_roles()))
  return cli.main(item, argv)


if __name__ == "__main__":
  main()
