"""The quickstart config: ConvNet-3 on the bundled scikit-learn digits, minutes on a CPU.

    python -m lottery_jax.main

trains ConvNet-3 (width 32) on 1,437 real 8x8 digits, prunes it with IMP, distilled and
random pruning to 89% sparsity, runs the stability analyses and prints the test accuracies on
the 360 held-out digits (see `get_config`). Every other config starts from `base()` (width
128, 3 rounds of 20%) and changes a few fields.
"""

import ml_collections


def train_config(**overrides) -> ml_collections.ConfigDict:
  """One training recipe: optimizer, schedule, length, batch, logging/checkpoint cadence."""
  t = ml_collections.ConfigDict()
  t.optimizer = "adam"      # 'sgd', 'adam' (L2 decay added to the gradient) or 'adamw'.
  t.learning_rate = 8e-4
  t.momentum = 0.9          # SGD only.
  t.weight_decay = 8e-4
  t.schedule = "step"       # 'constant', 'step' or 'cosine'.
  t.decay_at = (0.5, 0.65, 0.8)  # 'step': fractions of the run where the lr is multiplied...
  t.decay_factor = 0.15          # ... by this.
  t.warmup_epochs = 0.0
  t.epochs = 100.0
  t.num_steps = 0           # If > 0, overrides epochs (a short schedule for smoke runs).
  t.batch_size = 256
  t.eval_batch_size = 1000
  t.log_every = 50
  t.checkpoint_every = 500
  t.update(overrides)
  return t


def distilled_recipe(**overrides) -> ml_collections.ConfigDict:
  """The distilled-training recipe (the authors' public code, DESIGN.md): SGD, lr 0.01,
  momentum 0.9, weight decay 5e-4, lr x0.1 at half-way; `overrides` change any field
  (epochs, batch size, cadences)."""
  recipe = dict(optimizer="sgd", learning_rate=0.01, momentum=0.9, weight_decay=5e-4,
                schedule="step", decay_at=(0.5,), decay_factor=0.1)
  recipe.update(overrides)
  return train_config(**recipe)


def dsa_config() -> ml_collections.ConfigDict:
  """Differentiable siamese augmentation (lottery_jax.distill.dsa.DsaParams, DSA defaults)."""
  return ml_collections.ConfigDict(dict(
      strategy="color_crop_cutout_flip_scale_rotate", crop=0.125, cutout=0.5, scale=1.2,
      rotate=15.0, brightness=1.0, saturation=2.0, contrast=0.5, flip=0.5, single_op=True))


def distill_config() -> ml_collections.ConfigDict:
  """Making a distilled set and evaluating it; the quickstart's (digits) values. Each method
  has its own block, so `--config.distill.method=idc` alone switches to IDC's settings."""
  d = ml_collections.ConfigDict()
  d.method = "dm"             # 'dm' (distribution matching), 'idc' (gradient matching with
                              # multi-formation) or 'published' (evaluate distilled.source).
  d.images_per_class = 10     # Stored images per class (the storage budget).
  d.init = "real"             # Initial images: 'real' (random real images) or 'noise'.
  d.checkpoint_every = 200
  d.log_every = 50
  d.dsa = dsa_config()
  # The images are optimised by SGD with momentum; iterations = image updates.
  d.dm = ml_collections.ConfigDict(dict(
      iterations=300, learning_rate=1.0, momentum=0.5,
      per_class_real=64,      # Real images per class embedded per iteration.
      layers="head"))         # Embeddings matched: 'head' (DM) or 'blocks' (every block).
  d.idc = ml_collections.ConfigDict(dict(
      iterations=200, learning_rate=0.005, momentum=0.5,
      per_class_real=64,      # Real images per class whose gradient is matched.
      factor=2,               # Each stored image decodes into factor^2 training images.
      metric="l1",            # Gradient distance: 'l1', 'mse' or 'cos'.
      match_dense=False,      # Match the classifier's gradient too (IDC: conv layers only).
      net_steps=10,           # SGD steps of the matching network per iteration ...
      net_batch=128,          # ... on random real batches of this size,
      net_learning_rate=0.01,
      reinit_every=50,        # and a fresh network every this many iterations.
      clip=True))             # Keep the images within the real data's per-channel range.
  # Evaluation: fresh networks trained on the set with the distilled-training recipe and DSA,
  # against class-balanced random real subsets of images_per_class images per class.
  # 1,000 epochs as DESIGN.md: at 300, digits subsets of 10 per class are far from converged
  # (random subsets 92.1% after 300 epochs, 96.9% after 1,000; 3 seeds each).
  d.eval_seeds = 3
  d.eval_train = distilled_recipe(epochs=1000.0, batch_size=256, log_every=100,
                                  checkpoint_every=500)
  d.random_baseline = True
  return d

def base() -> ml_collections.ConfigDict:
  """All fields every experiment has, with the quickstart's values. Unlocked."""
  c = ml_collections.ConfigDict()
  c.experiment = "lottery"  # 'lottery' (dense + mask producers) or 'distill' (make a set).

  # Named seeds: every random operation derives its key from one of these.
  c.seeds = ml_collections.ConfigDict(dict(init=0, data_order=0, augment=0, pruning=0,
                                           distill=0, probes=0))

  c.data = ml_collections.ConfigDict()
  c.data.source = "digits"        # 'digits', a TFDS name, or a folder / .tar.gz of class folders.
  c.data.data_dir = ""            # TFDS data dir ('' = TFDS default).
  c.data.manual_dir = ""          # TFDS manual dir.
  c.data.cache_dir = ""           # Decoded-image and ZCA cache ('' = ~/.cache/lottery_jax).
  c.data.preprocess = "standardize"  # 'standardize' (train mean/std), 'zca' or 'none'.
  c.data.zca_eps = 0.1
  c.data.crop_padding = 0         # Random crop after zero padding by this many pixels (0 = off).
  c.data.flip = False             # Random horizontal flips.
  # A class-balanced train subset: the first train_examples // classes images of every class
  # in the source's order (0 = the whole train split). Preprocessing (mean/std, ZCA) is still
  # fitted on the whole train split, so a distilled set made from it stays in the same space.
  c.data.train_examples = 0

  c.model = ml_collections.ConfigDict()
  c.model.name = "convnet"        # See lottery_jax.models.MODELS.
  c.model.options = ml_collections.ConfigDict(dict(width=128, depth=3, norm="instance",
                                                   pooling="avg", weight_init="torch"))

  # Training on real data (the authors' public recipe; the quickstart uses a higher lr).
  c.train = train_config(optimizer="adam", learning_rate=0.01, weight_decay=8e-4,
                         schedule="step", epochs=20.0, batch_size=128)

  # Mask producers (see lottery_jax.lottery). An empty tuple trains the dense network only.
  c.lottery = ml_collections.ConfigDict()
  c.lottery.producers = ("imp", "distilled", "random")  # Of imp, distilled, hybrid, random.
  c.lottery.rounds = 3
  c.lottery.fraction = 0.2        # Share of the remaining prunable weights removed per round.
  c.lottery.scope = "global"      # 'global' or 'layerwise' magnitude pruning.
  c.lottery.dense_layers = ()     # Modules never pruned, e.g. ('Dense_0',): ConvNet's output.
  c.lottery.replicates = 2        # Whole pipeline repeated with fold_in(seed, replicate).
  c.lottery.rewind_epochs = 0.0   # IMP rewinds to theta_k, k = this many epochs (0: theta_0).
  c.lottery.hybrid_syn_rounds = 2  # Hybrid: distilled rounds before IMP takes over.
  c.lottery.random_reference = "imp"  # Random masks match IMP's layerwise sparsity, or 'global'.

  # The distilled set and its training recipe (the inner loop of distilled pruning).
  c.distilled = ml_collections.ConfigDict()
  c.distilled.source = "random_subset"  # A distilled .npz, or a class-balanced real subset.
  c.distilled.images_per_class = 10     # For 'random_subset'.
  # How distilled pruning augments the distilled set: 'dsa' (every example its own DSA draw,
  # settings in distilled.dsa; the authors' choice, and the CIFAR configs') or 'crop_flip'
  # (distilled.crop_padding / distilled.flip; all off on digits).
  c.distilled.augment = "crop_flip"
  c.distilled.dsa = dsa_config()
  c.distilled.crop_padding = 0
  c.distilled.flip = False
  # 25 epochs (25 steps on 100 images) keeps the distilled producer's data points >10x below
  # IMP's on digits, where the real train set is only 1,437 images.
  c.distilled.train = distilled_recipe(learning_rate=0.05, epochs=25.0, batch_size=512)

  # Dataset distillation (config.experiment = 'distill'; see lottery_jax.distill.run).
  c.distill = distill_config()

  # Stability analyses after the pruning stage (see lottery_jax.analysis); () skips them.
  c.stability = ml_collections.ConfigDict()
  c.stability.analyses = ("lmc", "landscape", "hessian", "masks")
  c.stability.replicates = 1          # Analyse the first min(this, lottery.replicates).
  c.stability.num_alphas = 31         # Interpolation points of linear mode connectivity.
  # Whose masks get an LMC pair (a second network on a second data order) and a barrier:
  # 'dense' and any of lottery.producers; those the run does not make are left out.
  c.stability.lmc_producers = ("dense", "imp", "distilled", "hybrid", "random")
  c.stability.lmc_examples = 0        # Train examples for LMC (0 = the whole train split).
  c.stability.detail_producers = ("imp", "distilled")  # Landscapes and Hessians for these...
  c.stability.detail_rounds = (1, 3)                   # ... at these rounds.
  c.stability.grid_size = 21          # Landscape grid: grid_size^2 points.
  c.stability.grid_examples = 128     # Train examples the landscape loss is computed on.
  c.stability.filter_normalize = False
  c.stability.hessian_probes = 8      # Rademacher probes per batch.
  c.stability.hessian_batches = 1
  c.stability.hessian_batch_size = 128
  # Probes / alphas / grid points per vmapped block (on a CPU, vmapping over parameter copies
  # is several times slower than one after another). probe_batch 0: stability.hessian's
  # default (single probes, 4 per jitted call, on a CPU; blocks of 8 on accelerators);
  # point_batch 0: points one after another in a lax.map.
  c.stability.probe_batch = 0
  c.stability.point_batch = 0
  c.stability.chunk_size = 500        # Examples per evaluation call.
  # Peak memory of one sweep call in GiB: point_batch, then chunk_size, shrink to fit it
  # (estimated from the model's activations). 0: 4 GiB on a CPU, half the accelerator's memory.
  c.stability.memory_budget_gb = 0.0
  c.stability.bn_examples = 2000      # BatchNorm models: statistics recomputed on these.
  # The two networks of an LMC pair (same init and mask, two data orders) trained in one
  # vmapped program: 'true', 'false' or 'auto' (false: slower on a CPU and on an H200 for
  # ConvNet-3; bench/README.md).
  c.stability.train_pairs_together = "auto"
  return c


def get_config() -> ml_collections.ConfigDict:
  """Quickstart: `python -m lottery_jax.main`, 1 min 38 s on 2 idle CPU cores (2026-11-26).

  base() shrunk so that every part of the report appears within minutes on a CPU and the
  producers separate: ConvNet-3 of width 32 (19,338 params; dense test accuracy about 98%),
  20 epochs of real training (220 steps), 5 rounds pruning 36% of the remaining weights each
  (= two rounds of 20%; lottery.fraction) to 89% sparsity, 2 replicates; stability on
  replicate 0: LMC with 21 alphas for every round, landscapes (15 x 15 grid) and Hessian
  tables (8 probes) at rounds 2 and 5 (59% and 89% sparse), mask statistics.
  """
  c = base()
  c.model.options.width = 32
  c.lottery.rounds = 5
  c.lottery.fraction = 0.36
  c.stability.num_alphas = 21
  c.stability.grid_size = 15
  c.stability.detail_rounds = (2, 5)
  c.lock()
  return c


def cifar_base(source: str) -> ml_collections.ConfigDict:
  """The paper's CIFAR settings (unlocked), shared by the configs/cifar*.py files.

  Real training (the authors' recipe): Adam, lr 8e-4, L2 weight decay 8e-4, batch 256, 100
  epochs with the lr multiplied by 0.15 at epochs 50, 65 and 80, mean/std normalisation and no
  augmentation (the authors' real-data loader only normalises; augmentation is SGD noise,
  which is what linear mode connectivity measures: `data.crop_padding=4`, `data.flip=True`
  turn on pad-4 crop and flip). Distilled training: SGD lr 0.01, momentum 0.9, weight decay
  5e-4, 1,000 epochs, batch up to 512, lr x0.1 at half-way, DSA on every example. 12 rounds
  (93.1% sparsity; Fig. 7 needs > 90%); hybrid = 8 distilled rounds (83.2%), then IMP;
  landscapes and Hessians at rounds 4 and 10 (59.0% and 89.3%, the paper's 60% / 90%);
  4 replicates (Fig. 2 averages 4 seeds), all of them in the LMC analysis.
  """
  c = base()
  c.data.source = source
  c.train = train_config(optimizer="adam", learning_rate=8e-4, weight_decay=8e-4,
                         schedule="step", decay_at=(0.5, 0.65, 0.8), decay_factor=0.15,
                         epochs=100.0, batch_size=256, log_every=100, checkpoint_every=1000)
  c.lottery.producers = ("imp", "distilled", "hybrid", "random")
  c.lottery.rounds = 12
  c.lottery.hybrid_syn_rounds = 8
  c.lottery.replicates = 4
  c.distilled.augment = "dsa"
  c.distilled.crop_padding = 4  # Used only with distilled.augment='crop_flip'.
  c.distilled.flip = True
  c.distilled.train = distilled_recipe(epochs=1000.0, batch_size=512, log_every=100,
                                       checkpoint_every=500)
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
  """Shrinks a CIFAR config to a CPU smoke run of every stage (minutes on 2 cores): ConvNet
  width 32, 20 real and 10 distilled steps, one round of each producer, one replicate; LMC on
  1,000 train examples (and the whole test split) at 11 alphas, a 5x5 landscape on 256
  examples, 4 Hutchinson probes on 128. It checks the pipeline, not the science."""
  c.model.options.width = 32
  c.train.num_steps = 20
  c.train.log_every = 10
  c.distilled.train.num_steps = 10
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
  """Shrinks a CIFAR config to a CIFAR-10 experiment that fits 90 minutes on 2 CPU cores
  (experiments/ 'cpu' preset). The science needs enough training for the dense network's
  LMC barrier to appear (2 epochs: none; bench/README.md), so real training keeps the
  authors' recipe at 10 epochs on a 20,000-image class-balanced subset (782 steps of 256)
  and the model shrinks instead: ConvNet-3 of width 32. Rounds prune 36% each (= two of the
  paper's 20% rounds): 7 rounds reach 95.6%; hybrid = 4 distilled rounds (83.2%, the paper's
  syn8) then IMP; landscapes and Hessians at rounds 2 and 5 (59.0% / 89.3%, the paper's 60% /
  90%). LMC pairs for dense, IMP and distilled only, barriers on 5,000 train images and the
  whole test split; one replicate. The distilled inner loop keeps the paper's 1,000 epochs
  with DSA."""
  c.model.options.width = 32
  c.data.train_examples = 20000
  c.train.epochs = 10.0
  c.train.log_every = 100
  c.train.checkpoint_every = 400
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
  c.stability.hessian_probes = 32
  c.stability.hessian_batches = 2
  c.stability.hessian_batch_size = 128
  c.stability.point_batch = 0
  c.stability.probe_batch = 0
  return c


def rewind_variant(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """IMP with weight rewinding to 3% of real training (the paper's Fig. 7 'k = 3' of 100
  epochs; 0.3 epochs in the cpu preset), and nothing else: producers ('imp',), no stability
  analyses. Its masks are not lottery tickets (not trained from theta_0)."""
  c.lottery.producers = ("imp",)
  c.lottery.rewind_epochs = 0.03 * c.train.epochs
  c.stability.analyses = ()
  return c


# `configs/X.py:<variant>[,<variant>...]`, applied left to right.
VARIANTS = {"smoke": cpu_smoke, "cpu": cpu_preset, "rewind": rewind_variant}


def variant(c: ml_collections.ConfigDict, arg: str | None) -> ml_collections.ConfigDict:
  """`configs/X.py:<arg>`: '' (the config as written) or comma-separated names of VARIANTS
  ('smoke', 'cpu', 'rewind'; e.g. 'cpu,rewind'), applied in order; ValueError naming the
  valid variants otherwise."""
  if arg in (None, ""):
    return c
  names = [a.strip() for a in str(arg).split(",")]
  unknown = [a for a in names if a not in VARIANTS]
  if unknown:
    raise ValueError(f"unknown config variant {unknown[0]!r}; valid: "
                     f"{', '.join(repr(v) for v in VARIANTS)} (or none), comma-separated")
  for name in names:
    VARIANTS[name](c)
  return c
