"""The quickstart config: ConvNet-3 on the bundled scikit-learn digits, minutes on a CPU.

    python -m lottery_jax.main

trains ConvNet-3 (dense) on 1,437 real 8x8 digits and prints the test accuracy on the 360
held-out ones (about 99.5%). Every other config starts from `base()` and changes a few fields.
"""

import ml_collections


def base() -> ml_collections.ConfigDict:
  """All fields every experiment has, with the quickstart's values. Unlocked."""
  c = ml_collections.ConfigDict()

  # Named seeds: every random operation derives its key from one of these.
  c.seeds = ml_collections.ConfigDict(dict(init=0, data_order=0, augment=0, pruning=0,
                                           probes=0))

  c.data = ml_collections.ConfigDict()
  c.data.source = "digits"        # 'digits', a TFDS name, or a folder / .tar.gz of class folders.
  c.data.data_dir = ""            # TFDS data dir ('' = TFDS default).
  c.data.manual_dir = ""          # TFDS manual dir.
  c.data.cache_dir = ""           # Decoded-image and ZCA cache ('' = ~/.cache/lottery_jax).
  c.data.preprocess = "standardize"  # 'standardize' (train mean/std), 'zca' or 'none'.
  c.data.zca_eps = 0.1
  c.data.crop_padding = 0         # Random crop after zero padding by this many pixels (0 = off).
  c.data.flip = False             # Random horizontal flips.

  c.model = ml_collections.ConfigDict()
  c.model.name = "convnet"        # See lottery_jax.models.MODELS.
  c.model.options = ml_collections.ConfigDict(dict(width=128, depth=3, norm="instance",
                                                   pooling="avg"))

  c.train = ml_collections.ConfigDict()
  c.train.optimizer = "adam"      # 'sgd', 'adam' (L2 decay) or 'adamw'.
  c.train.learning_rate = 0.01
  c.train.momentum = 0.9          # SGD only.
  c.train.weight_decay = 8e-4
  c.train.schedule = "step"       # 'constant', 'step' or 'cosine'.
  c.train.decay_at = (0.5, 0.65, 0.8)  # 'step': fractions of the run where lr is multiplied...
  c.train.decay_factor = 0.15          # ... by this.
  c.train.warmup_epochs = 0.0
  c.train.epochs = 30.0
  c.train.num_steps = 0           # If > 0, overrides epochs (a short schedule for smoke runs).
  c.train.batch_size = 128
  c.train.eval_batch_size = 1000
  c.train.log_every = 50
  c.train.checkpoint_every = 500
  return c


def get_config() -> ml_collections.ConfigDict:
  """Quickstart: `python -m lottery_jax.main` -> digits test accuracy about 99.5%."""
  c = base()
  c.lock()
  return c
