"""Config blocks shared by the experiments' bases (lottery_jax.default_config): each function
returns one fresh, unlocked ConfigDict with the quickstart's (digits) values. An experiment's
base puts together the blocks it reads; its runner's `identity` says which fields a run
depends on.
"""

import ml_collections


def seeds() -> ml_collections.ConfigDict:
  """Named seeds: every random operation derives its key from one of these. `split` draws
  the validation hold-out and the data.train_examples subset; `analysis` the stratified
  train examples the stability analyses measure on (the same for every producer and round)."""
  return ml_collections.ConfigDict(dict(
      init=0,          # theta_0: the dense network's initial weights.
      data_order=0,    # The order of real-data batches (LMC's second network: a fold-in).
      augment=0,       # Real- and distilled-data augmentation draws (crop, flip, DSA, CutMix).
      pruning=0,       # Random pruning's masks and any other random choice of a pruner.
      distill=0,       # Making a distilled set (initial images, real batches, networks).
      probes=0,        # Hutchinson probes and the landscape plane's random directions.
      split=0,         # The validation hold-out and the data.train_examples subset.
      analysis=0))     # The stratified train sample every stability analysis reads.


def data() -> ml_collections.ConfigDict:
  """The real dataset and its preprocessing and augmentation."""
  d = ml_collections.ConfigDict()
  d.source = "digits"        # 'digits', a TFDS name, or a folder / .tar.gz of class folders.
  d.data_dir = ""            # TFDS data dir ('' = TFDS default).
  d.manual_dir = ""          # TFDS manual dir.
  d.cache_dir = ""           # Decoded-image and ZCA cache ('' = ~/.cache/lottery_jax).
  d.preprocess = "standardize"  # 'standardize' (train mean/std), 'zca' or 'none'.
  d.zca_eps = 0.1            # ZCA regulariser, added to the covariance's eigenvalues.
  # Real-data training augmentation (DATA_DEFAULTS): 'crop_flip' (the two fields below),
  # 'idc_dsa' (IDC's DiffAug on every example, as the authors: flip, colour, then one of
  # crop/scale/rotate per batch; cutout too when CutMix is off) or 'none'.
  d.augment = "crop_flip"
  d.crop_padding = 0         # Random crop after zero padding by this many pixels (0 = off).
  d.flip = False             # Random horizontal flips.
  d.cutmix_prob = 0.0        # Share of batches CutMixed (0 = off; the authors: 0.5).
  d.cutmix_beta = 1.0        # CutMix's pasted area is drawn from Beta(beta, beta).
  # A stratified random validation split held out of the source's train split (seeds.split;
  # 0 = none): validation accuracy is reported beside test accuracy, and choices are made on it.
  d.validation_examples = 0
  # A stratified random train subset of what is left (seeds.split; 0 = all of it).
  # Preprocessing (mean/std, ZCA) is still fitted on the whole train split, so a distilled
  # set made from any part of it stays in the same space.
  d.train_examples = 0
  return d


def model() -> ml_collections.ConfigDict:
  """The network: a name of lottery_jax.models.MODELS and its options."""
  m = ml_collections.ConfigDict()
  m.name = "convnet"         # 'convnet', 'resnet18', 'resnet10_ap' or 'mlp'.
  # Keyword arguments of the model (ConvNet's below; the MLP takes `hidden` instead).
  m.options = ml_collections.ConfigDict(dict(
      width=128,              # ConvNet: channels of every conv layer.
      depth=3,                # ConvNet: conv blocks, each halving the image.
      norm="instance",        # ConvNet: 'instance', 'batch' or 'none'.
      pooling="avg",          # ConvNet: 'avg' or 'max'.
      weight_init="torch"))   # Initialiser family of the kernels (PyTorch's defaults).
  return m


def train_config(**overrides) -> ml_collections.ConfigDict:
  """One training recipe: optimizer, schedule, length, batch, logging/checkpoint cadence."""
  t = ml_collections.ConfigDict()
  t.optimizer = "adam"      # 'sgd', 'adam' (L2 decay added to the gradient) or 'adamw'.
  t.learning_rate = 8e-4    # Peak learning rate.
  t.momentum = 0.9          # SGD only.
  t.weight_decay = 8e-4     # L2 coefficient (decoupled for 'adamw').
  t.schedule = "step"       # 'constant', 'step' or 'cosine'.
  t.decay_at = (0.5, 0.65, 0.8)  # 'step': fractions of training where the lr is decayed.
  t.decay_factor = 0.15          # 'step': the lr is multiplied by this at each decay_at.
  t.warmup_epochs = 0.0     # Linear warm-up from 0 to the peak lr over this many epochs.
  t.epochs = 100.0          # Length in passes over the training set.
  t.num_steps = 0           # If > 0, overrides epochs (a short schedule for smoke runs).
  t.batch_size = 256        # Training examples per step.
  t.eval_batch_size = 1000  # Examples per evaluation call (changes no result).
  t.log_every = 50          # Steps between metrics.jsonl lines and progress updates.
  t.checkpoint_every = 500  # Steps between checkpoints (a killed run resumes from the last).
  # Execution (RUN_DEFAULTS): a field at its default is left out of a run's identity.
  t.compute_dtype = "float32"  # Or 'bfloat16': forward/backward in bf16, float32 weights.
  t.loop = "auto"           # 'step', 'block' (lottery_jax.blocks) or 'auto' (per backend).
  t.block_steps = 200       # Steps per dispatch in the block loop.
  t.update(overrides)
  return t


# Recipe fields added after runs were made, with their defaults: `without_run_defaults`
# leaves them out of a run's identity at these values, so existing run directories keep
# their names and resume. `compute_dtype` changes results (it stays in when not float32);
# `loop` and `block_steps` change only rounding (in when not at their defaults).
RUN_DEFAULTS = {"compute_dtype": "float32", "loop": "auto", "block_steps": 200}
RECIPE_PATHS = (("train",), ("distilled", "train"), ("distill", "eval_train"))
# config.data fields added after runs were made, likewise left out at these values;
# cutmix_beta is also left out while CutMix is off (cutmix_prob 0), where nothing reads it.
DATA_DEFAULTS = {"augment": "crop_flip", "cutmix_prob": 0.0, "cutmix_beta": 1.0}
# config.stability fields added after runs were made, likewise left out at these values.
STABILITY_DEFAULTS = {"sharpness_k": 3, "lanczos_steps": 0, "density_probes": 1,
                      "landscape_on_distilled": False}
# config.distill fields added after runs were made, likewise left out at these values.
DISTILL_DEFAULTS = {"eval_first_seed": 0}
# Fields that moved, old path -> new path: a config naming the old one is refused with a line
# naming the new one (validate, main).
MOVED = {"stability.train_pairs_together": "train.pairs_together"}


def real_train(**overrides) -> ml_collections.ConfigDict:
  """The lottery experiment's real-data recipe: `train_config` and how the two networks of an
  LMC pair (same init and mask, two data orders) are trained: `pairs_together` 'true' (one
  vmapped program), 'false' (one after the other) or 'auto' (false: slower on a CPU and on an
  H200 for ConvNet-3; bench/README.md)."""
  t = train_config(**overrides)
  t.pairs_together = "auto"  # LMC pairs in one vmapped program: 'true', 'false' or 'auto'.
  return t


def without_run_defaults(config: dict) -> dict:
  """`config` (a dict, changed in place and returned) without the RUN_DEFAULTS fields that
  hold their defaults in any recipe of RECIPE_PATHS, nor the DATA_DEFAULTS (STABILITY_DEFAULTS,
  DISTILL_DEFAULTS) fields that hold theirs in config.data (config.stability, config.distill).
  train.pairs_together is put back where it was when run directories were named
  (stability.train_pairs_together), so an identity, and a default run directory's name, stay
  as they were."""
  train = config.get("train")
  if isinstance(train, dict) and "pairs_together" in train and "stability" in config:
    config["stability"]["train_pairs_together"] = train.pop("pairs_together")
  for path in RECIPE_PATHS:
    recipe = config
    for name in path:
      recipe = recipe.get(name) if isinstance(recipe, dict) else None
    _drop_defaults(recipe, RUN_DEFAULTS)
  data = config.get("data")
  if isinstance(data, dict) and data.get("cutmix_prob", 0.0) == 0:
    data.pop("cutmix_beta", None)
  _drop_defaults(data, DATA_DEFAULTS)
  _drop_defaults(config.get("stability"), STABILITY_DEFAULTS)
  _drop_defaults(config.get("distill"), DISTILL_DEFAULTS)
  return config


def _drop_defaults(block, defaults: dict) -> None:
  """Delete from the dict `block` (anything else: nothing) each field of `defaults` that holds
  its default."""
  if isinstance(block, dict):
    for name, default in defaults.items():
      if name in block and block[name] == default:
        del block[name]


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
      strategy="color_crop_cutout_flip_scale_rotate",  # The ops, '_'-joined.
      crop=0.125,        # Largest translation, as a fraction of the image side.
      cutout=0.5,        # Side of the erased square, as a fraction of the image side.
      scale=1.2,         # Per-axis scale factors drawn from [1 / scale, scale].
      rotate=15.0,       # Rotation drawn from [-rotate, rotate] degrees.
      brightness=1.0,    # Offset drawn from [-brightness / 2, brightness / 2].
      saturation=2.0,    # Deviations from each pixel's channel mean times U[0, saturation].
      contrast=0.5,      # Deviations from the image mean times U[1 - contrast, 1 + contrast].
      flip=0.5,          # Probability of a left-right flip.
      single_op=True))   # One op per call, drawn from the strategy (True), or all in turn.


def distillation() -> ml_collections.ConfigDict:
  """Making a distilled set with DM or IDC (the method is chosen by the experiment:
  distill.method, or a lottery run's distilled.source). Each method has its own block, so
  switching methods needs one field."""
  d = ml_collections.ConfigDict()
  d.images_per_class = 10     # Stored images per class (the storage budget).
  d.init = "real"             # Initial images: 'real' (random real images) or 'noise'.
  d.checkpoint_every = 200    # Iterations between checkpoints of the images.
  d.log_every = 50            # Iterations between metrics lines.
  d.dsa = dsa_config()        # The augmentation both methods apply to real and distilled images.
  # The images are optimised by SGD with momentum; iterations = image updates.
  d.dm = ml_collections.ConfigDict(dict(
      iterations=300,         # DM: image updates.
      learning_rate=1.0,      # DM: the images' SGD learning rate.
      momentum=0.5,           # DM: the images' SGD momentum.
      per_class_real=64,      # Real images per class embedded per iteration.
      layers="head"))         # Embeddings matched: 'head' (DM) or 'blocks' (every block).
  d.idc = ml_collections.ConfigDict(dict(
      iterations=200,         # IDC: image updates.
      learning_rate=0.005,    # IDC: the images' SGD learning rate.
      momentum=0.5,           # IDC: the images' SGD momentum.
      per_class_real=64,      # Real images per class whose gradient is matched.
      factor=2,               # Each stored image decodes into factor^2 training images.
      metric="l1",            # Gradient distance: 'l1', 'mse' or 'cos'.
      match_dense=False,      # Match the classifier's gradient too (IDC: conv layers only).
      net_steps=10,           # SGD steps of the matching network per iteration.
      net_batch=128,          # Real batch size of those steps.
      net_learning_rate=0.01,  # Learning rate of those steps.
      reinit_every=50,        # A fresh matching network every this many iterations.
      clip=True))             # Keep the images within the real data's per-channel range.
  return d


def distill_config() -> ml_collections.ConfigDict:
  """The distill experiment's block: `distillation()` plus the method and the evaluation."""
  d = distillation()
  d.method = "dm"             # 'dm' (distribution matching), 'idc' (gradient matching with
                              # multi-formation) or 'published' (evaluate distilled.source).
  # Evaluation: this many fresh networks trained on the set with eval_train and DSA, and as
  # many on class-balanced random real subsets of images_per_class images per class.
  d.eval_seeds = 3
  # The evaluation seeds are eval_first_seed, eval_first_seed + 1, ...: a run can add seeds to
  # another's (same config otherwise) without repeating any.
  d.eval_first_seed = 0
  # The distilled-training recipe for 1,000 epochs, as DESIGN.md (at 300, random digits
  # subsets of 10 per class are still far from converged).
  d.eval_train = distilled_recipe(epochs=1000.0, batch_size=256, log_every=100,
                                  checkpoint_every=500)
  d.random_baseline = True    # Also train on class-balanced random real subsets, as a baseline.
  return d



def lottery() -> ml_collections.ConfigDict:
  """Mask producers (lottery_jax.imp). An empty producers tuple trains the dense network only."""
  lot = ml_collections.ConfigDict()
  # Of imp, distilled, hybrid, random, and pruning at initialization: snip, grasp, synflow.
  lot.producers = ("imp", "distilled", "random")
  lot.rounds = 3            # Pruning rounds after the dense network (round 0).
  lot.fraction = 0.2        # Share of the remaining prunable weights removed per round.
  lot.scope = "global"      # 'global' or 'layerwise' magnitude pruning.
  lot.dense_layers = ()     # Modules never pruned, e.g. ('Dense_0',): ConvNet's output.
  lot.replicates = 2        # Whole pipeline repeated with fold_in(seed, replicate).
  lot.rewind_epochs = 0.0   # IMP rewinds to theta_k, k = this many epochs (0: theta_0).
  lot.rewind_steps = 0      # IMP rewinds to theta_k, k = this many steps (num_steps runs).
  # Rounds >= 1 at which the producers whose masks need no real training (distilled, random,
  # snip, grasp, synflow) train their mask on real data; their accuracy rows and analyses are
  # at those rounds only (() = every round). IMP and hybrid train every round: their next
  # masks need it. Round 0, the dense network, is always trained.
  lot.real_training_rounds = ()
  lot.hybrid_syn_rounds = 2  # Hybrid: distilled rounds before IMP takes over.
  lot.random_reference = "imp"  # Random masks match IMP's layerwise sparsity, or 'global'.
  lot.pai_iterations = 0    # snip/grasp/synflow rescoring steps (0: 1, 1, 100 as published).
  lot.pai_examples = 256    # Real training examples SNIP and GraSP score on.
  return lot


def distilled() -> ml_collections.ConfigDict:
  """The distilled set a lottery run prunes with, and its training recipe (the inner loop of
  distilled pruning)."""
  d = ml_collections.ConfigDict()
  # 'dm' or 'idc': made in the run first, with the settings in config.distill (resumable,
  # cached in the run directory); a distilled .npz (its preprocessing must be the run's); or
  # 'random_subset', a class-balanced random real subset (a baseline, not a distilled set).
  d.source = "random_subset"
  d.images_per_class = 10     # For 'random_subset'.
  # How distilled pruning augments the distilled set: 'dsa' (every example its own DSA draw,
  # settings in distilled.dsa; the authors' choice, and the CIFAR configs') or 'crop_flip'
  # (distilled.crop_padding / distilled.flip; all off on digits).
  d.augment = "crop_flip"
  d.dsa = dsa_config()
  d.crop_padding = 0          # 'crop_flip': random crop after zero padding (0 = off).
  d.flip = False              # 'crop_flip': random horizontal flips.
  # 25 epochs (25 steps on 100 images) keeps the distilled producer's data points >10x below
  # IMP's on digits, where the real train set is only 1,437 images.
  d.train = distilled_recipe(learning_rate=0.05, epochs=25.0, batch_size=512)
  return d


def stability() -> ml_collections.ConfigDict:
  """Stability analyses after the pruning stage (lottery_jax.runners.analyses); analyses=()
  skips them."""
  st = ml_collections.ConfigDict()
  # Of 'lmc', 'landscape', 'hessian', 'masks', 'sharpness' (top Hessian eigenvalues, trace
  # and spectral density at the detail rounds) and 'layerwise_lmc' (each layer's barrier at
  # the detail rounds); () = none.
  st.analyses = ("lmc", "landscape", "hessian", "masks")
  st.replicates = 1          # Analyse the first min(this, lottery.replicates).
  st.num_alphas = 31         # Interpolation points of linear mode connectivity.
  # Whose masks get an LMC pair (a second network on a second data order) and a barrier:
  # 'dense' and any of lottery.producers; those the run does not make are left out.
  st.lmc_producers = ("dense", "imp", "distilled", "hybrid", "random", "snip", "grasp",
                      "synflow")
  st.lmc_examples = 0        # Train examples for LMC (0 = the whole train split).
  st.detail_producers = ("imp", "distilled")  # Producers that get landscapes and Hessians.
  st.detail_rounds = (1, 3)                   # Rounds at which they get them.
  st.grid_size = 21          # Landscape grid: grid_size^2 points.
  st.grid_examples = 128     # Train examples the landscape loss is computed on.
  st.filter_normalize = False  # Scale the landscape's directions filter-wise (Li et al. 2018).
  st.hessian_probes = 8      # Rademacher probes per batch.
  st.hessian_batches = 1     # Stratified train batches the Hessian diagonal averages over.
  st.hessian_batch_size = 128  # Examples per Hessian batch.
  # Probes / alphas / grid points per vmapped block (on a CPU, vmapping over parameter copies
  # is several times slower than one after another). probe_batch 0: stability.hessian's
  # default (single probes, 4 per jitted call, on a CPU; blocks of 8 on accelerators);
  # point_batch 0: points one after another in a lax.map.
  st.probe_batch = 0
  st.point_batch = 0         # Alphas / grid points per vmapped block (0: one after another).
  st.chunk_size = 500        # Examples per evaluation call.
  # Peak memory of one sweep call in GiB: point_batch, then chunk_size, shrink to fit it
  # (estimated from the model's activations). 0: 4 GiB on a CPU, half the accelerator's memory.
  st.memory_budget_gb = 0.0
  st.bn_examples = 2000      # BatchNorm models: statistics recomputed on these.
  # Sharpness (STABILITY_DEFAULTS), on the Hessian's batches and kept weights:
  st.sharpness_k = 3         # Top Hessian eigenvalues, by Lanczos.
  st.lanczos_steps = 0       # Lanczos steps (Hessian-vector products) per run; 0: 80.
  st.density_probes = 1      # Stochastic Lanczos quadrature probes of the spectral density.
  # Also evaluate each landscape's grid on the run's distilled images (needs a producer that
  # trains on a distilled set): landscape_distilled.npz beside landscape.npz.
  st.landscape_on_distilled = False
  return st
