"""Iterative magnitude pruning as pure pieces: training recipes, one IMP round, the producers'
choices and checks. Nothing here touches a run directory (runners/replicate.py does that).

Producers (each for R rounds; after round r a mask keeps 0.8^r of the prunable weights with the
default fraction 0.2):
  imp        train on real data -> prune (global magnitude) -> rewind to theta_0 or theta_k.
  distilled  the same loop, but each round trains on a distilled set; rewinds to theta_0.
  hybrid     `syn_rounds` distilled rounds, then IMP on real data from that mask (theta_0).
  random     random masks with IMP's layerwise sparsity of the same round ('imp') or random
             global pruning ('global').
  snip, grasp, synflow
             pruning at initialization (no training): round r's mask is theta_0 pruned from
             dense to the sparsity of r rounds, 1 - (1 - fraction)^r, by that score
             (`pruning.SCORES`) in `lottery.pai_iterations` rescoring steps (0: the method's
             own, 1 for SNIP and GraSP, 100 for SynFlow), SNIP and GraSP on
             `lottery.pai_examples` real training examples.

One round is `imp_round(mask, train_fn, prune_fn, rewind)`: train from the rewind point with
`mask`, prune the trained weights, return the next mask. `imp_masks` chains R rounds:

  train_fn = lambda rewind, m: train.fit(train.new_state(rewind.params, rewind.batch_stats, m,
                                                         tx), step_fn, images, labels, ...)
  masks = imp.imp_masks(ones, train_fn, imp.magnitude_prune_fn(0.2), imp.RewindPoint(p0, s0),
                        rounds=8)
"""

import functools
from typing import Any, Callable, NamedTuple

import jax
import ml_collections

from lottery_jax import blocks
from lottery_jax import loss as loss_lib
from lottery_jax import masks as masks_lib
from lottery_jax import optim
from lottery_jax import pruning
from lottery_jax import train as train_lib
from lottery_jax import train_many
from lottery_jax.distill import dsa, dsa_train
from lottery_jax.errors import UserInputError, unknown_choice

PAI_PRODUCERS = ("snip", "grasp", "synflow")
PRODUCERS = ("imp", "distilled", "hybrid", "random") + PAI_PRODUCERS
PAI_DEFAULT_ITERATIONS = {"snip": 1, "grasp": 1, "synflow": 100}
DISTILLED_AUGMENTATIONS = ("dsa", "crop_flip")
RANDOM_REFERENCES = ("imp", "global")


class Recipe(NamedTuple):
  """One training setup, compiled once and reused by every round.

  Attributes:
    step_fn: the jitted masked train step.
    tx: its optimizer (to build fresh states).
    num_steps: steps of a full run.
    batch_size: examples per step.
    checkpoint_every, log_every: host-loop cadence.
    multi_step_fn: the step vmapped over copies (train_many), or None: copies one at a time.
    loop, block_steps: train.fit's loop ('auto', 'step', 'block') and block length.
  """
  step_fn: Any
  tx: Any
  num_steps: int
  batch_size: int
  checkpoint_every: int
  log_every: int
  multi_step_fn: Any = None
  loop: str = "auto"
  block_steps: int = blocks.DEFAULT_BLOCK_STEPS


def make_recipe(model, train_config, num_examples: int, crop_padding: int, flip: bool,
                num_steps: int, dsa_params: dsa.DsaParams | None = None,
                together: bool = False, augment=None) -> Recipe:
  """A Recipe for `num_steps` steps of train_config's optimizer and schedule.

  With `dsa_params`, every example is augmented by its own DSA draw (as the distilled-pruning
  authors train on distilled data) instead of crop_padding / flip; `together` adds the step
  vmapped over copies (crop/flip recipes only). `augment` (a data.augment.RealAugmentation,
  config.data's) is the real-data step's augmentation kind and CutMix."""
  tx, schedule = optim.from_recipe(train_config, num_examples, num_steps)
  dtype = train_config.get("compute_dtype", "float32")
  if dsa_params is not None:
    if together:
      raise ValueError("training copies together is for crop/flip recipes, not DSA ones")
    step_fn = dsa_train.make_train_step(model, tx, dsa_params, schedule, dtype)
  else:
    step_fn = train_lib.make_train_step(model, tx, schedule, crop_padding, flip, dtype,
                                        augment=augment)
  multi = (train_many.make_multi_train_step(model, tx, schedule, crop_padding, flip, dtype,
                                            augment=augment)
           if together else None)
  return Recipe(step_fn, tx, num_steps, train_config.batch_size,
                train_config.checkpoint_every, train_config.log_every, multi,
                train_config.get("loop", "auto"),
                train_config.get("block_steps", blocks.DEFAULT_BLOCK_STEPS))


def distilled_dsa_params(distilled_config) -> dsa.DsaParams | None:
  """The DSA settings of config.distilled (augment 'dsa'), or None for plain crop/flip; a
  UserInputError for another augment or an unknown DSA op."""
  augment = distilled_config.augment
  if augment not in DISTILLED_AUGMENTATIONS:
    raise unknown_choice("distilled.augment", augment, DISTILLED_AUGMENTATIONS)
  return dsa.params_from_config(distilled_config.dsa) if augment == "dsa" else None


class Keys(NamedTuple):
  """The PRNG keys of one replicate, each derived from a named seed."""
  init: jax.Array
  data_order: jax.Array
  augment: jax.Array
  pruning: jax.Array


def replicate_keys(seeds, replicate: int) -> Keys:
  """fold_in(key(seeds.<name>), replicate) for every named seed a replicate uses."""
  key = lambda name: jax.random.fold_in(jax.random.key(seeds[name]), replicate)
  return Keys(key("init"), key("data_order"), key("augment"), key("pruning"))


class RewindPoint(NamedTuple):
  """Where every round's training starts: params and batch_stats (pytrees of arrays) after
  `step` optimizer steps (0: theta_0, the initialisation)."""
  params: Any
  batch_stats: Any
  step: int = 0


def imp_round(mask, train_fn: Callable, prune_fn: Callable, rewind: RewindPoint):
  """One IMP round: `train_fn(rewind, mask)` -> a trained state (with `.params`), then
  `prune_fn(params, mask)` -> the next mask. Returns (next mask, trained state)."""
  trained = train_fn(rewind, mask)
  return prune_fn(trained.params, mask), trained


def imp_masks(mask, train_fn: Callable, prune_fn: Callable, rewind: RewindPoint,
              rounds: int) -> list:
  """The masks of rounds 0..`rounds` of IMP from `mask` (round 0), every round rewound to
  `rewind`."""
  out = [mask]
  for _ in range(rounds):
    mask, _ = imp_round(mask, train_fn, prune_fn, rewind)
    out.append(mask)
  return out


def pai_iterations(lot, producer: str) -> int:
  """Rescoring steps of a pruning-at-initialization producer: lottery.pai_iterations, or the
  method's own when 0."""
  return int(lot.pai_iterations) or PAI_DEFAULT_ITERATIONS[producer]


def pai_fraction(fraction: float, r: int) -> float:
  """Share of the prunable weights removed after r rounds of `fraction`: 1 - (1 - f)^r."""
  return 1.0 - (1.0 - float(fraction)) ** r


def _eval_logits(params, images, *, model, batch_stats):
  logits, _ = loss_lib.forward(model, params, batch_stats, images, train=False)
  return logits


def eval_apply_fn(model, batch_stats) -> Callable:
  """apply_fn(params, images) -> logits of `model` in evaluation mode with `batch_stats`
  (the pruning scores' network; make it once and reuse it: jit caches on the object)."""
  return functools.partial(_eval_logits, model=model, batch_stats=batch_stats)


# What `synflow_apply_fn` scores, pinned in a lottery run's inputs.json so that a run directory
# holding SynFlow masks of another scoring network is not resumed with this one.
SYNFLOW_NETWORK = "evaluation mode, instance normalisation left out (since 2026-12-04)"


def _norm_free_logits(params, images, *, model):
  kept = {k: v for k, v in params.items() if not k.startswith("GroupNorm_")}
  logits, _ = loss_lib.forward(model, kept, {}, images, train=False)
  return logits


def synflow_apply_fn(model, batch_stats) -> Callable:
  """The network SynFlow scores: `eval_apply_fn`, except that a ConvNet with instance
  normalisation is scored as its norm='none' twin (same kernels, GroupNorm parameters unused).

  SynFlow's conservation argument needs a network that is linear in |w| apart from its ReLUs
  (BatchNorm in evaluation mode is affine, so it stays). Instance normalisation of SynFlow's
  all-ones input is not: it leaves only the zero padding's border effects, and the scores
  then pruned the first conv layer almost entirely (99.7% at 89% overall, fig3 2026-12-04)."""
  if getattr(model, "norm", None) != "instance":
    return eval_apply_fn(model, batch_stats)
  return functools.partial(_norm_free_logits, model=model.clone(norm="none"))


def magnitude_prune_fn(fraction: float, scope: str = "global") -> Callable:
  """prune_fn(params, mask): remove `fraction` of the remaining prunable weights by magnitude
  (pruning.prune, exact top-k)."""
  return functools.partial(pruning.prune, fraction=fraction, scope=scope)


def check_lottery_config(lot: ml_collections.ConfigDict) -> None:
  """UserInputError for unknown producers, scope or reference, a bad fraction, or hybrid rounds
  beyond lottery.rounds (validate.check_lottery checks the counts' types and ranges first)."""
  for p in lot.producers:
    if p not in PRODUCERS:
      raise unknown_choice("lottery producer", p, PRODUCERS)
  pruning.check_fraction(lot.fraction)
  if lot.scope not in pruning.SCOPES:
    raise unknown_choice("lottery.scope", lot.scope, pruning.SCOPES)
  if lot.random_reference not in RANDOM_REFERENCES:
    raise unknown_choice("lottery.random_reference", lot.random_reference, RANDOM_REFERENCES)
  for name, low in (("pai_iterations", 0), ("pai_examples", 1)):
    value = lot[name]
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
      raise UserInputError(f"lottery.{name} must be an integer >= {low}, got {value!r}")
  if "hybrid" in lot.producers and not 0 <= lot.hybrid_syn_rounds <= lot.rounds:
    raise UserInputError(f"lottery.hybrid_syn_rounds must be in [0, rounds={lot.rounds}], got "
                         f"{lot.hybrid_syn_rounds}")


def prunable_predicate(params, dense_layers):
  """masks.is_prunable minus the modules in lottery.dense_layers (UserInputError if unknown)."""
  return masks_lib.dense_layers_predicate(params, dense_layers, "lottery.dense_layers")


def check_dense_layers(model, dense_layers, image_shape: tuple[int, int, int]) -> None:
  """UserInputError unless every name in lottery.dense_layers is a module of `model`, built on
  the run's `image_shape` (H, W, C) images, with a prunable kernel (checked on shapes only:
  jax.eval_shape, no compute)."""
  params = jax.eval_shape(
      lambda: train_lib.init_variables(model, jax.random.key(0), tuple(image_shape))[0])
  prunable_predicate(params, dense_layers)


# Producers whose round r + 1 mask is pruned from round r's network trained on real data.
TRAINED_EVERY_ROUND = ("imp", "hybrid")


def trained_rounds(lot, producer: str) -> list[int]:
  """The rounds 0..lottery.rounds at which `producer` trains its mask on real data (`lot`:
  config.lottery, a ConfigDict or a dict): every round for IMP and hybrid, and for all
  producers when lottery.real_training_rounds is empty; else round 0 and the listed rounds."""
  listed = lot.get("real_training_rounds") or ()
  if producer in TRAINED_EVERY_ROUND or not listed:
    return list(range(lot["rounds"] + 1))
  return [0] + sorted(r for r in listed if 1 <= r <= lot["rounds"])


def needs_distilled(lot) -> bool:
  """Whether any producer of config.lottery `lot` (a ConfigDict or a dict) trains on the
  distilled set."""
  producers = lot["producers"]
  return "distilled" in producers or bool("hybrid" in producers and lot["hybrid_syn_rounds"])
