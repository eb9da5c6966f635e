"""What a lottery run will make, and every config field that names a part of it checked
against it: producers and rounds (stability.lmc_producers, detail_producers, detail_rounds),
epochs and fractions of training (warm-up, lr decays, rewinding, lengths), the model's depth,
the crop padding and the example counts against the data.

`check_names(config)` needs only the config (validate.check calls it, before anything runs);
`check_against_data(...)` needs the sizes of the data (the runners call it after loading the
data, before they claim the work dir). Both raise a UserInputError naming the field, its value
and what the run makes; nothing here trains or writes.
"""

import math

from lottery_jax import imp
from lottery_jax import models
from lottery_jax.data import batching
from lottery_jax.errors import UserInputError, unknown_choice

MAX_STEPS = 2**31 - 1  # TrainState.step is an int32.
# Analyses of the detail producers (and the dense network) at the detail rounds.
DETAIL_ANALYSES = ("landscape", "hessian", "sharpness", "layerwise_lmc")


def check_names(config) -> None:
  """Producers, rounds and epochs named by config.stability and config.lottery against the
  producers and rounds the run makes."""
  st, lot = config.stability, config.lottery
  analyses = tuple(st.analyses)
  made = ("dense",) + tuple(lot.producers)
  if "lmc" in analyses and st.replicates > 0 and not set(st.lmc_producers) & set(made):
    raise UserInputError(
        f"stability.lmc_producers={tuple(st.lmc_producers)} names no network this run makes "
        f"({', '.join(made)}); name one of them or drop 'lmc' from stability.analyses")
  for p in st.detail_producers:
    if p not in imp.PRODUCERS:
      raise unknown_choice("stability.detail_producers entry", p, imp.PRODUCERS)
  for r in lot.real_training_rounds:
    if not isinstance(r, int) or isinstance(r, bool) or not 1 <= r <= lot.rounds:
      raise UserInputError(
          f"lottery.real_training_rounds={tuple(lot.real_training_rounds)} names {r!r}; it "
          f"holds rounds 1..{lot.rounds} (lottery.rounds), or () for every round")
  details = [a for a in analyses if a in DETAIL_ANALYSES]
  if details and st.replicates > 0:
    off = "or drop " + " and ".join(repr(a) for a in details) + " from stability.analyses"
    if not st.detail_producers or not st.detail_rounds:
      raise UserInputError(f"stability.detail_producers={tuple(st.detail_producers)} at "
                           f"detail_rounds={tuple(st.detail_rounds)} selects nothing for "
                           f"{' and '.join(details)}; name a producer and a round, {off}")
    for p in st.detail_producers:
      if p not in lot.producers:
        raise UserInputError(
            f"stability.detail_producers names {p!r}, which this run does not make "
            f"(lottery.producers={tuple(lot.producers)}); drop it, add the producer, {off}")
    for r in st.detail_rounds:
      if r > lot.rounds:
        raise UserInputError(
            f"stability.detail_rounds names round {r}, but the run makes rounds 0..{lot.rounds} "
            f"(lottery.rounds={lot.rounds}); drop it, raise lottery.rounds, {off}")
      for p in st.detail_producers:
        if r not in imp.trained_rounds(lot, p):
          raise UserInputError(
              f"stability.detail_rounds names round {r}, at which {p!r} is not trained on real "
              f"data (lottery.real_training_rounds={tuple(lot.real_training_rounds)}); add it "
              f"there or drop it from detail_rounds, {off}")
  if st.get("landscape_on_distilled", False):
    if "landscape" not in analyses:
      raise UserInputError("stability.landscape_on_distilled=True evaluates the landscapes on "
                           "the distilled set, but 'landscape' is not in stability.analyses; "
                           "add it or set landscape_on_distilled=False")
    if not imp.needs_distilled(lot):
      raise UserInputError(
          "stability.landscape_on_distilled=True needs the run's distilled set, but no producer "
          f"of lottery.producers={tuple(lot.producers)} trains on one; add 'distilled' or "
          "'hybrid', or set landscape_on_distilled=False")
  if rewinds(lot) and "imp" not in lot.producers:
    raise UserInputError(f"{rewind_field(lot)} rewinds IMP, which "
                         f"lottery.producers={tuple(lot.producers)} does not include; set it "
                         "to 0 or add 'imp'")


def rewinds(lot) -> bool:
  """Whether config.lottery `lot` rewinds IMP to theta_k, k > 0."""
  return lot.rewind_epochs > 0 or lot.get("rewind_steps", 0) > 0


def rewind_field(lot) -> str:
  """'lottery.<field>=<value>' of the field that sets the rewind point."""
  if lot.get("rewind_steps", 0) > 0:
    return f"lottery.rewind_steps={lot.rewind_steps}"
  return f"lottery.rewind_epochs={lot.rewind_epochs}"


def rewind_steps(lot, num_train: int, batch_size: int) -> float:
  """k, the step IMP rewinds to (0: theta_0): lottery.rewind_steps, or lottery.rewind_epochs
  epochs of `num_train` examples at `batch_size` (not yet rounded)."""
  if lot.get("rewind_steps", 0) > 0:
    return float(lot.rewind_steps)
  return lot.rewind_epochs * batching.steps_per_epoch(num_train, batch_size)


def recipe_steps(recipe, path: str, num_examples: int) -> int:
  """The steps of training recipe config.<path> on `num_examples` examples (as
  optim.num_steps_for), checked: a whole number of int32 steps, a warm-up that ends before
  training does, and lr decays that fall on distinct steps after the warm-up."""
  per_epoch = batching.steps_per_epoch(num_examples, recipe.batch_size)
  wanted = recipe.num_steps if recipe.num_steps > 0 else recipe.epochs * per_epoch
  if wanted > MAX_STEPS:
    raise UserInputError(f"{path} runs {wanted:.3g} steps ({recipe.epochs} epochs of "
                         f"{per_epoch} steps, or num_steps); at most {MAX_STEPS} fit a step "
                         "counter")
  steps = int(wanted) if recipe.num_steps > 0 else max(1, math.ceil(wanted))
  warmup = recipe.warmup_epochs * per_epoch
  if recipe.warmup_epochs > 0 and not 1 <= round(min(warmup, 2.0 * MAX_STEPS)) < steps:
    raise UserInputError(
        f"{path}.warmup_epochs={recipe.warmup_epochs} is {warmup:.3g} steps ({per_epoch} per "
        f"epoch) but training runs {steps}: the warm-up must last at least one step and end "
        "before training does")
  warmup = int(round(warmup)) if recipe.warmup_epochs > 0 else 0
  if recipe.schedule == "step":
    at = [int(round(f * steps)) for f in recipe.decay_at]
    if len(set(at)) < len(at) or any(not warmup < s < steps for s in at):
      raise UserInputError(
          f"{path}.decay_at={tuple(recipe.decay_at)} decays the lr at steps {at} of {steps}"
          + (f" (warm-up {warmup})" if warmup else "") + ": every decay needs its own step, "
          "after the warm-up and before the end")
  return steps


def check_against_data(config, num_train: int, image_shape: tuple[int, int, int],
                       num_classes: int, num_distilled: int | None) -> None:
  """Lengths, rewinding, model depth, dense layers, crop padding and example counts of a
  lottery config against `num_train` real training images of `image_shape` (H, W, C) in
  `num_classes` classes and a distilled set of `num_distilled` images (None: no producer
  trains on one)."""
  check_model(config, image_shape)
  imp.check_dense_layers(models.get_model(config.model.name, num_classes,
                                          **config.model.options),
                         config.lottery.dense_layers, image_shape)
  real = recipe_steps(config.train, "train", num_train)
  if num_distilled is not None:
    recipe_steps(config.distilled.train, "distilled.train", num_distilled)
  lot = config.lottery
  if rewinds(lot):
    per_epoch = batching.steps_per_epoch(num_train, config.train.batch_size)
    k = rewind_steps(lot, num_train, config.train.batch_size)
    if not 1 <= round(min(k, 2.0 * MAX_STEPS)) < real:
      raise UserInputError(
          f"{rewind_field(lot)} is {k:.3g} steps ({per_epoch} per epoch); rewinding needs at "
          f"least 1 step and fewer than real training's {real}")
  side = min(image_shape[:2])
  paddings = [("data.crop_padding", config.data.crop_padding)]
  if num_distilled is not None and config.distilled.augment == "crop_flip":
    paddings.append(("distilled.crop_padding", config.distilled.crop_padding))
  for name, pad in paddings:
    if pad >= side:
      raise UserInputError(f"{name}={pad} on {image_shape[0]}x{image_shape[1]} images can "
                           f"crop nothing but padding; it must be below {side}")
  st = config.stability
  counts = [("lmc_examples", st.lmc_examples, ("lmc", "layerwise_lmc")),
            ("grid_examples", st.grid_examples, ("landscape",)),
            ("hessian_batches x hessian_batch_size", st.hessian_batches * st.hessian_batch_size,
             ("hessian", "sharpness"))]
  if set(lot.producers) & set(imp.PAI_PRODUCERS) and lot.pai_examples > num_train:
    raise UserInputError(f"lottery.pai_examples={lot.pai_examples} exceeds the {num_train} "
                         f"training images; at most {num_train}")
  for name, n, readers in counts:
    if set(readers) & set(st.analyses) and n > num_train:
      raise UserInputError(f"stability.{name}={n} exceeds the {num_train} training images "
                           f"(0 examples means all of them for lmc_examples)")


def check_model(config, image_shape: tuple[int, int, int]) -> None:
  """The model builds on `image_shape` images: ConvNet's depth halves them that many times."""
  options = config.model.options
  if config.model.name == "convnet":
    side = min(image_shape[:2])
    if side >> options.depth == 0:
      raise UserInputError(
          f"model.options.depth={options.depth} halves {image_shape[0]}x{image_shape[1]} images "
          f"{options.depth} times, to nothing; at most {side.bit_length() - 1} for this data")
