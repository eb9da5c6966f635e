"""Every config field's type and range, and the work directory, checked before any work.

`check(config)` raises a UserInputError naming the first bad field, its value and the valid
range; `check_workdir(path)` one for a work directory that cannot be created or written. Both
run once per run, in `runners.check`, before anything loads data or touches the work directory;
the runners themselves trust their config. The vocabularies come from the library modules that
use them (optim, imp, distill.make, train_many, ...).
"""

import math
import os

import ml_collections

from lottery_jax import blocks
from lottery_jax import config_blocks
from lottery_jax import default_config
from lottery_jax import imp
from lottery_jax import models
from lottery_jax import optim
from lottery_jax import plan
from lottery_jax import train
from lottery_jax import train_many
from lottery_jax.data import augment as augment_lib
from lottery_jax.distill import make as distill_make
from lottery_jax.errors import UserInputError, unknown_choice

EXPERIMENTS = ("lottery", "distill")  # config.experiment; runners/<name>.py runs each.
PREPROCESSING = ("none", "standardize", "zca")
# config.stability.analyses entries.
ANALYSES = ("lmc", "landscape", "hessian", "masks", "sharpness", "layerwise_lmc")
LMC_PRODUCERS = ("dense",) + imp.PRODUCERS
MAX_SEED = 2**63 - 1  # jax.random.key takes a signed 64-bit seed.


def _get(config, path: str):
  node = config
  for part in path.split("."):
    node = node[part]
  return node


def _is_int(x) -> bool:
  return isinstance(x, int) and not isinstance(x, bool)


def _is_real(x) -> bool:
  return isinstance(x, (int, float)) and not isinstance(x, bool)


def check_int(config, path: str, low: int, high: int | None = None) -> int:
  """config.<path> as an int in [low, high]; a UserInputError otherwise."""
  value = _get(config, path)
  bound = f">= {low}" if high is None else f"in [{low}, {high}]"
  if not _is_int(value) or value < low or (high is not None and value > high):
    raise UserInputError(f"{path} must be an integer {bound}, got {value!r}")
  return value


def check_real(config, path: str, low: float, *, positive: bool = False,
               below: float | None = None) -> float:
  """config.<path> as a finite number >= low (> low when `positive`, < below if given)."""
  value = _get(config, path)
  bound = (f"> {low}" if positive else f">= {low}") + ("" if below is None else f" and < {below}")
  if (not _is_real(value) or not math.isfinite(value) or value < low
      or (positive and value == low) or (below is not None and value >= below)):
    raise UserInputError(f"{path} must be a finite number {bound}, got {value!r}")
  return float(value)


def check_bool(config, path: str) -> bool:
  value = _get(config, path)
  if not isinstance(value, bool):
    raise UserInputError(f"{path} must be True or False, got {value!r}")
  return value


def check_recipe(config, path: str) -> None:
  """A training recipe (default_config.train_config): optimizer, schedule, lengths, cadences."""
  recipe = _get(config, path)
  if recipe.optimizer not in optim.OPTIMIZERS:
    raise unknown_choice(f"{path}.optimizer", recipe.optimizer, optim.OPTIMIZERS)
  if recipe.schedule not in optim.SCHEDULES:
    raise unknown_choice(f"{path}.schedule", recipe.schedule, optim.SCHEDULES)
  check_real(config, f"{path}.learning_rate", 0.0, positive=True)
  check_real(config, f"{path}.momentum", 0.0, below=1.0)
  check_real(config, f"{path}.weight_decay", 0.0)
  check_real(config, f"{path}.decay_factor", 0.0, positive=True)
  check_real(config, f"{path}.warmup_epochs", 0.0)
  for f in recipe.decay_at:
    if not _is_real(f) or not 0.0 <= f <= 1.0:
      raise UserInputError(f"{path}.decay_at must hold fractions in [0, 1], got "
                           f"{tuple(recipe.decay_at)}")
  steps = check_int(config, f"{path}.num_steps", 0)
  if steps == 0:
    check_real(config, f"{path}.epochs", 0.0, positive=True)
  for name in ("batch_size", "eval_batch_size", "log_every", "checkpoint_every"):
    check_int(config, f"{path}.{name}", 1)
  if "compute_dtype" in recipe and recipe.compute_dtype not in train.COMPUTE_DTYPES:
    raise unknown_choice(f"{path}.compute_dtype", recipe.compute_dtype,
                         train.COMPUTE_DTYPES)
  if "loop" in recipe and str(recipe.loop).lower() not in blocks.LOOPS:
    raise unknown_choice(f"{path}.loop", recipe.loop, blocks.LOOPS)
  if "block_steps" in recipe:
    check_int(config, f"{path}.block_steps", 1)


def check_unique(config, path: str) -> None:
  """UserInputError when the tuple field config.<path> names an entry more than once."""
  values = tuple(_get(config, path))
  repeated = sorted({v for v in values if values.count(v) > 1}, key=values.index)
  if repeated:
    raise UserInputError(f"{path}={values} names {', '.join(repr(v) for v in repeated)} more "
                         "than once; give each entry once")


# Tuple fields whose entries name things (producers, analyses, rounds, layers): each once.
UNIQUE_FIELDS = ("lottery.producers", "lottery.dense_layers", "lottery.real_training_rounds",
                 "stability.analyses",
                 "stability.lmc_producers", "stability.detail_producers",
                 "stability.detail_rounds")


def check_model(config) -> None:
  """The model name, its options, and positive widths and depths."""
  options = config.model.options
  for name in ("width", "depth"):
    if name in options:
      check_int(config, f"model.options.{name}", 1)
  if "hidden" in options and not all(_is_int(h) and h >= 1 for h in options.hidden):
    raise UserInputError(f"model.options.hidden must hold integers >= 1, got "
                         f"{tuple(options.hidden)}")
  models.get_model(config.model.name, 10, **options)


def check_data(config) -> None:
  data = config.data
  if not isinstance(data.source, str) or not data.source:
    raise UserInputError("data.source must name 'digits', a TFDS dataset, or a folder/.tar.gz "
                         f"of class folders, got {data.source!r}")
  if data.preprocess not in PREPROCESSING:
    raise unknown_choice("data.preprocess", data.preprocess, PREPROCESSING)
  check_real(config, "data.zca_eps", 0.0, positive=True)
  check_int(config, "data.crop_padding", 0)
  for name in ("train_examples", "validation_examples"):
    if name in data:
      check_int(config, f"data.{name}", 0)
  check_bool(config, "data.flip")
  augment_lib.from_config(data)  # Names a bad data.augment, data.cutmix_* or crop/flip mix.
  for name in config.seeds:
    check_int(config, f"seeds.{name}", 0, MAX_SEED)


def check_stability(config) -> None:
  """The stability analyses: their names, LMC producers, sizes and memory budget."""
  st = config.stability
  for a in st.analyses:
    if a not in ANALYSES:
      raise unknown_choice("stability analysis", a, ANALYSES)
  for p in st.lmc_producers:
    if p not in LMC_PRODUCERS:
      raise unknown_choice("stability.lmc_producers entry", p, LMC_PRODUCERS)
  for name in ("replicates", "lmc_examples", "grid_examples", "probe_batch", "point_batch"):
    check_int(config, f"stability.{name}", 0)
  for name in ("num_alphas", "grid_size", "hessian_probes", "hessian_batches",
               "hessian_batch_size", "chunk_size", "bn_examples"):
    check_int(config, f"stability.{name}", 1 if name not in ("num_alphas", "grid_size") else 2)
  check_bool(config, "stability.filter_normalize")
  if "sharpness_k" in st:  # Configs saved before these fields existed lack them.
    check_int(config, "stability.sharpness_k", 1)
    check_int(config, "stability.lanczos_steps", 0)
    check_int(config, "stability.density_probes", 1)
    check_bool(config, "stability.landscape_on_distilled")
  if "memory_budget_gb" in st:
    check_real(config, "stability.memory_budget_gb", 0.0)
  for r in st.detail_rounds:
    if not _is_int(r) or r < 0:
      raise UserInputError(f"stability.detail_rounds must hold rounds >= 0, got "
                           f"{tuple(st.detail_rounds)}")


def check_lottery(config) -> None:
  for path in UNIQUE_FIELDS:
    check_unique(config, path)
  check_int(config, "lottery.rounds", 0, 999)  # stability.probe_keys.ROUND_LIMIT
  check_int(config, "lottery.replicates", 1)
  check_int(config, "lottery.hybrid_syn_rounds", 0)
  imp.check_lottery_config(config.lottery)
  check_real(config, "lottery.rewind_epochs", 0.0)
  check_int(config, "lottery.rewind_steps", 0)
  if config.lottery.rewind_epochs > 0 and config.lottery.rewind_steps > 0:
    raise UserInputError(f"lottery.rewind_epochs={config.lottery.rewind_epochs} and "
                         f"lottery.rewind_steps={config.lottery.rewind_steps} both set the "
                         "rewind point; set one of them to 0")
  check_recipe(config, "train")
  if str(config.train.pairs_together).lower() not in train_many.CHOICES:
    raise unknown_choice("train.pairs_together", config.train.pairs_together,
                         train_many.CHOICES)
  check_recipe(config, "distilled.train")
  source = config.distilled.source
  if not isinstance(source, str) or not source:
    raise UserInputError("distilled.source must be 'random_subset', 'dm' or 'idc' (made in "
                         f"the run) or a distilled .npz path, got {source!r}")
  if source in ("dm", "idc") and imp.needs_distilled(config.lottery):
    check_distillation(config, source)
  check_int(config, "distilled.images_per_class", 1)
  check_int(config, "distilled.crop_padding", 0)
  check_bool(config, "distilled.flip")
  imp.distilled_dsa_params(config.distilled)  # Names a bad augment or DSA op.
  check_stability(config)
  plan.check_names(config)  # Producers, rounds and epochs against what the run makes.


def check_distillation(config, method: str) -> None:
  """The settings of making a set with `method` ('dm' or 'idc') in config.distill."""
  check_int(config, "distill.images_per_class", 1)
  check_int(config, "distill.checkpoint_every", 1)
  check_int(config, "distill.log_every", 1)
  check_int(config, f"distill.{method}.iterations", 0)
  check_int(config, f"distill.{method}.per_class_real", 1)
  check_real(config, f"distill.{method}.learning_rate", 0.0, positive=True)
  check_real(config, f"distill.{method}.momentum", 0.0, below=1.0)
  if method == "idc":
    for name in ("factor", "net_steps", "net_batch", "reinit_every"):
      check_int(config, f"distill.idc.{name}", 1)
    check_real(config, "distill.idc.net_learning_rate", 0.0, positive=True)
    check_bool(config, "distill.idc.clip")
    check_bool(config, "distill.idc.match_dense")
  distill_make.check_method(config.distill, method)


def check_distill(config) -> None:
  d = config.distill
  if d.method not in distill_make.METHODS:
    raise unknown_choice("distill.method", d.method, distill_make.METHODS)
  check_int(config, "distill.eval_seeds", 0)
  check_int(config, "distill.eval_first_seed", 0)
  check_bool(config, "distill.random_baseline")
  if d.method in distill_make.MAKERS:
    check_distillation(config, d.method)
  elif config.distilled.source in ("", "random_subset"):
    raise UserInputError("distill.method='published' evaluates the .npz named by "
                         "distilled.source; set --config.distilled.source=PATH")
  distill_make.dsa.params_from_config(d.dsa)  # Names a bad DSA strategy.
  check_recipe(config, "distill.eval_train")


def check_blocks(config) -> None:
  """UserInputError when `config` lacks a field its experiment's base has (a config file of
  one experiment run as another, e.g. --config.experiment=distill on a lottery config)."""
  base = (default_config.lottery_base() if config.experiment == "lottery"
          else default_config.distill_base())

  def missing(want, have, prefix):
    for key in want:
      if key not in have:
        yield prefix + key
      elif hasattr(want[key], "keys") and prefix + key != "model.options":
        if not hasattr(have[key], "keys"):
          yield prefix + key
        else:
          yield from missing(want[key], have[key], f"{prefix}{key}.")

  lacking = list(missing(base, config, ""))
  if lacking:
    shown = ", ".join(lacking[:4]) + (" ..." if len(lacking) > 4 else "")
    raise UserInputError(f"experiment={config.experiment!r} reads fields this config lacks "
                         f"({shown}): it was made for another experiment; use a config file "
                         f"of experiment {config.experiment!r} (lottery_jax.default_config."
                         f"{config.experiment}_base)")


def check_moved(config) -> None:
  """UserInputError for a field set under the name it had before it moved
  (config_blocks.MOVED), naming its new place."""
  for old, new in config_blocks.MOVED.items():
    node = config
    for part in old.split("."):
      node = node.get(part) if hasattr(node, "get") else None
    if node is not None:
      raise UserInputError(f"{old} is now {new}; set --config.{new}={node}")


def check(config: ml_collections.ConfigDict) -> None:
  """UserInputError naming the first bad field of `config`; nothing is read or written."""
  if config.get("experiment") not in EXPERIMENTS:
    raise unknown_choice("experiment", config.get("experiment"), EXPERIMENTS)
  check_moved(config)
  check_blocks(config)
  check_data(config)
  check_model(config)
  if config.experiment == "lottery":
    check_lottery(config)
  else:
    check_distill(config)


def check_workdir(workdir: str) -> None:
  """UserInputError when `workdir` is a file, lies under a file, or cannot be written."""
  check_writable_folder(workdir, f"work dir {workdir}", "--workdir")


def check_writable_folder(path: str, what: str, flag: str) -> None:
  """UserInputError when the folder `path` (`what` in the message; `flag` the option that sets
  it) is a file, lies under a file, or cannot be created or written."""
  full = os.path.abspath(path)
  if os.path.exists(full) and not os.path.isdir(full):
    raise UserInputError(f"{what} is a file, not a directory; choose another {flag}")
  probe = full
  while not os.path.exists(probe):
    probe = os.path.dirname(probe)
  if not os.path.isdir(probe):
    raise UserInputError(f"{what} cannot be created: {probe} is a file; choose another {flag}")
  if not os.access(probe, os.W_OK | os.X_OK):
    raise UserInputError(f"{what} is not writable ({probe} denies write permission); choose "
                         f"another {flag} or fix its permissions")
