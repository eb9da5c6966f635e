"""The paper's CIFAR base and the named variants, shared by the config files of configs/.

A config file loads this module by path (the few lines at its top: config files are loaded by
path, not as a package), so `--config=configs/X.py[:variant]` works from any directory. Its
`get_config(arg)` applies the variants of `arg` that make sense for it: `variant(c, arg,
LOTTERY_VARIANTS)` (or a part of it) for the lottery configs, `variant(c, arg,
DISTILL_VARIANTS)` for the distillation ones.

    python -m lottery_jax.main --config=configs/cifar10_convnet.py:cpu,rewind
"""

import ml_collections

from lottery_jax import config_blocks
from lottery_jax import default_config

# The project's committed CIFAR-10 DM set (10 images per class, mean/std normalisation),
# relative to the repository root as every command in README.md and docs/ is.
COMMITTED_DM_SET = "experiments/results/distilled/cifar10_dm_ipc10.npz"


def cifar_base(source: str) -> ml_collections.ConfigDict:
  """The paper's CIFAR settings (unlocked), shared by the configs/cifar*.py files.

  Real training (our base recipe, taken from an earlier notebook version of the authors' code;
  their current public code trains every real network with SGD and DiffAug + CutMix, the
  `:authors` variant below): Adam, lr 8e-4, L2 weight decay 8e-4, batch 256, 100
  epochs with the lr multiplied by 0.15 at epochs 50, 65 and 80, mean/std normalisation and no
  augmentation (the authors' real-data loader only normalises; augmentation is SGD noise,
  which is what linear mode connectivity measures: `data.crop_padding=4`, `data.flip=True`
  turn on pad-4 crop and flip). The distilled set is made first, in the run, by DM on the
  run's network: 10 images per class from real ones, 2,500 iterations matching the head's
  embeddings of 64 real images per class, lr 1.0, DSA (as configs/distill_cifar10_dm.py; DM's
  paper runs 20,000 iterations of 256). Distilled training: SGD lr 0.01, momentum 0.9, weight
  decay 5e-4, 1,000 epochs, batch up to 512, lr x0.1 at half-way, DSA on every example. 12
  rounds (93.1% sparsity; Fig. 7 needs > 90%); hybrid = 8 distilled rounds (83.2%), then IMP;
  landscapes and Hessians at rounds 4 and 10 (59.0% and 89.3%, the paper's 60% / 90%);
  4 replicates (Fig. 2 averages 4 seeds), all of them in the LMC analysis.
  """
  c = default_config.lottery_base()
  c.data.source = source
  c.train = config_blocks.real_train(
      optimizer="adam", learning_rate=8e-4, weight_decay=8e-4, schedule="step",
      decay_at=(0.5, 0.65, 0.8), decay_factor=0.15, epochs=100.0, batch_size=256,
      log_every=100, checkpoint_every=1000)
  c.lottery.producers = ("imp", "distilled", "hybrid", "random")
  c.lottery.rounds = 12
  c.lottery.hybrid_syn_rounds = 8
  c.lottery.replicates = 4
  c.distilled.source = "dm"
  c.distill.images_per_class = 10
  c.distill.checkpoint_every = 500
  c.distill.log_every = 100
  c.distill.dm.update(iterations=2500, learning_rate=1.0, momentum=0.5, per_class_real=64,
                      layers="head")
  c.distilled.augment = "dsa"
  c.distilled.crop_padding = 4  # Used only with distilled.augment='crop_flip'.
  c.distilled.flip = True
  c.distilled.train = config_blocks.distilled_recipe(epochs=1000.0, batch_size=512,
                                                     log_every=100, checkpoint_every=500)
  c.stability.replicates = 4
  c.stability.detail_rounds = (4, 10)  # 59.0% and 89.3% sparse.
  c.stability.grid_size = 100         # 10,000 points, as the paper.
  c.stability.grid_examples = 2000
  c.stability.hessian_probes = 200
  c.stability.hessian_batches = 4
  c.stability.probe_batch = 8         # Vectorise on accelerators.
  c.stability.point_batch = 16
  return c


def cpu_smoke(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """Shrinks a lottery config to a CPU smoke run of every stage (minutes on 2 cores): ConvNet
  width 32, 20 real and 10 distilled steps, one round of each producer, one replicate; LMC on
  1,000 train examples (and the whole test split) at 11 alphas, a 5x5 landscape on 256
  examples, 4 Hutchinson probes on 128; a distillation in the run shrinks to 10 DM
  iterations on 16 real images per class. It checks the pipeline, not the science."""
  c.model.options.width = 32
  c.train.num_steps = 20
  c.train.log_every = 10
  c.distilled.train.num_steps = 10
  c.distill.dm.iterations = 10
  c.distill.dm.per_class_real = 16
  c.distill.log_every = 5
  c.lottery.rounds = 1
  c.lottery.hybrid_syn_rounds = 1
  c.lottery.replicates = 1
  c.stability.replicates = 1
  c.stability.detail_rounds = (1,)
  c.stability.num_alphas = 11
  c.stability.lmc_examples = 1000
  c.stability.grid_size = 5
  c.stability.grid_examples = 256
  c.stability.hessian_probes = 4
  c.stability.hessian_batches = 1
  c.stability.hessian_batch_size = 128
  c.stability.point_batch = 0
  c.stability.probe_batch = 0
  return c


def cpu_preset(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """Shrinks a CIFAR-10 config to the experiments/ 'cpu' preset, sized for about 90 minutes on
  2 CPU cores (experiments/results/README.md has what it measured). The science needs enough
  training for the dense network's LMC barrier to appear (bench/README.md), so real training
  keeps the base's Adam recipe at 10 epochs on a 20,000-image stratified random subset of the
  train split (780 steps of 256), with 5,000 other train images held out as a validation
  split, and the model shrinks instead: ConvNet-3 of width 32. Rounds prune 36% each (= two of
  the paper's 20% rounds): 7 rounds reach 95.6%; hybrid = 4 distilled rounds (83.2%, the
  paper's syn8) then IMP; landscapes and Hessians at rounds 2 and 5 (59.0% / 89.3%, the
  paper's 60% / 90%). Producers IMP, distilled and hybrid (random pruning is in no figure of
  the paper). LMC pairs for dense, IMP and distilled only, barriers on 5,000 train images (a
  stratified random sample, seeds.analysis) and the whole test split; Hessians from 64 probes
  on each of 4 stratified batches of 128; one replicate. The distilled inner loop keeps the
  paper's 1,000 epochs with DSA, on the project's committed CIFAR-10 DM set (COMMITTED_DM_SET;
  distilling in the run would take much of the budget)."""
  c.distilled.source = COMMITTED_DM_SET
  c.model.options.width = 32
  c.data.validation_examples = 5000
  c.data.train_examples = 20000
  c.train.epochs = 10.0
  c.train.log_every = 100
  c.train.checkpoint_every = 400
  c.lottery.producers = ("imp", "distilled", "hybrid")
  c.lottery.rounds = 7
  c.lottery.fraction = 0.36
  c.lottery.hybrid_syn_rounds = 4
  c.lottery.replicates = 1
  c.stability.replicates = 1
  c.stability.lmc_producers = ("dense", "imp", "distilled")
  c.stability.detail_rounds = (2, 5)
  c.stability.num_alphas = 21
  c.stability.lmc_examples = 5000
  c.stability.grid_size = 21
  c.stability.grid_examples = 500
  c.stability.hessian_probes = 64
  c.stability.hessian_batches = 4
  c.stability.hessian_batch_size = 128
  c.stability.point_batch = 0
  c.stability.probe_batch = 0
  return c


def authors_variant(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """Real-data training as the authors' public code trains every real network (the dense one,
  each IMP round, both networks of an LMC pair: github luke-mcdermott-mi/SyntheticDataForIMP,
  argument.py and train_pruned.py, on IDC's code): SGD lr 0.01, momentum 0.9, weight decay
  5e-4 (added to the gradient), batch 64, 300 epochs with the lr x0.2 at 2/3 and 5/6 of
  training; IDC's DiffAug on every real batch, each example its own draws (flip and colour
  always, then one of crop/scale/rotate per batch; no cutout, because CutMix is on); CutMix
  with Beta(1, 1) on half the batches; mean/std inputs. Everything else is the config's:
  width (128 in the paper base, 32 with `:cpu`), subset and validation split. Their
  MultiStepLR decays at whole epochs 2E//3 and 5E//6: the fractions here are exact at 300
  epochs; at 10 epochs theirs would be epochs 6 and 8 (--config.train.decay_at='(0.6,0.8)').
  `variant` applies it before the size variants, so `:cpu,authors` is their recipe for the
  cpu preset's 10 epochs at width 32 and `:smoke,authors` for 20 steps."""
  c.train.update(optimizer="sgd", learning_rate=0.01, momentum=0.9, weight_decay=5e-4,
                 batch_size=64, epochs=300.0, num_steps=0, schedule="step",
                 decay_at=(2 / 3, 5 / 6), decay_factor=0.2, warmup_epochs=0.0)
  c.data.update(preprocess="standardize", augment="idc_dsa", crop_padding=0, flip=False,
                cutmix_prob=0.5, cutmix_beta=1.0)
  return c


REWIND_SHARE = 0.03  # The paper's Fig. 7 'k = 3' of 100 epochs.


def rewind_variant(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """IMP with weight rewinding to 3% of real training (the paper's Fig. 7 'k = 3' of 100
  epochs; 0.3 epochs in the cpu preset), and nothing else: producers ('imp',), no stability
  analyses. Its masks are not lottery tickets (not trained from theta_0). A run sized in
  steps (train.num_steps, as the smoke variant) rewinds to 3% of them, at least 1 step
  (lottery.rewind_steps). `variant` applies it after the other variants, whatever their order,
  so it reads the run's final length."""
  c.lottery.producers = ("imp",)
  if c.train.num_steps > 0:
    c.lottery.rewind_epochs = 0.0
    c.lottery.rewind_steps = max(1, round(REWIND_SHARE * c.train.num_steps))
  else:
    c.lottery.rewind_epochs = REWIND_SHARE * c.train.epochs
    c.lottery.rewind_steps = 0
  c.stability.analyses = ()
  return c


def distill_smoke(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """Shrinks a distillation config to a CPU smoke run: 10 DM or 4 IDC iterations (IDC's network
  trained 2 steps each), 16 real images per class, one evaluation seed of 20 steps. It checks
  the pipeline, not the science."""
  d = c.distill
  d.dm.iterations = 10
  d.dm.per_class_real = 16
  d.idc.iterations = 4
  d.idc.net_steps = 2
  d.idc.per_class_real = min(d.idc.per_class_real, 16)
  d.log_every = 5
  d.eval_train.num_steps = 20
  d.eval_train.log_every = 10
  d.eval_seeds = 1
  return c


# Variants of `configs/X.py:<variant>[,<variant>...]`, applied left to right.
LOTTERY_VARIANTS = {"smoke": cpu_smoke, "cpu": cpu_preset, "rewind": rewind_variant,
                    "authors": authors_variant}
DISTILL_VARIANTS = {"smoke": distill_smoke}
# Whatever order a command names them in: a recipe first, then the sizes (smoke, cpu: they set
# the length), then rewinding (it reads the final length).
VARIANT_ORDER = {"authors": 0, "rewind": 2}


def variant(c: ml_collections.ConfigDict, arg: str | None,
            variants: dict) -> ml_collections.ConfigDict:
  """`configs/X.py:<arg>`: '' (the config as written) or comma-separated names of `variants`
  (e.g. 'cpu,rewind'), applied in VARIANT_ORDER ('authors' first, 'rewind' last, the others
  in the order given); ValueError naming the valid variants otherwise."""
  if arg in (None, ""):
    return c
  names = [a.strip() for a in str(arg).split(",")]
  unknown = [a for a in names if a not in variants]
  if unknown:
    raise ValueError(f"unknown config variant {unknown[0]!r}; valid: "
                     f"{', '.join(repr(v) for v in variants)} (or none), comma-separated")
  for name in sorted(names, key=lambda n: VARIANT_ORDER.get(n, 1)):
    variants[name](c)
  return c
