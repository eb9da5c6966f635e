"""Mask producers, round by round, and the sparse training that evaluates every mask.

Producers (each for R rounds; after round r a mask keeps 0.8^r of the prunable weights with the
default fraction 0.2):
  imp        train on real data -> prune (global magnitude) -> rewind to theta_0 or theta_k.
  distilled  the same loop, but each round trains on a distilled set; rewinds to theta_0.
  hybrid     `syn_rounds` distilled rounds, then IMP on real data from that mask (theta_0).
  random     random masks with IMP's layerwise sparsity of the same round ('imp') or random
             global pruning ('global').
Every round's mask (and the dense network, round 0) is trained on real data from the rewind
point and evaluated on the test split. A replicate repeats everything with its own init,
data-order, augmentation and pruning keys (fold_in(seed, replicate)).

On disk, per replicate `replicate_<s>/`:
  dense/real/                 round 0 (all-True mask) trained on real data from theta_0
  dense/distilled/            round 0 trained on the distilled set (round 1 of distilled prunes it)
  rewind/                     theta_k (k > 0 only): the first k steps of dense training
  <producer>/round_<r>/mask.npz, real/, distilled/
Each stage writes `result.json` when done and is skipped when it exists; training stages also
resume from their newest checkpoint, so a killed run picks up where it stopped. Hybrid rounds
up to `syn_rounds` are the distilled producer's rounds and share its directories. With several
processes, every process runs every stage (process 0 writes the files) and a stage is skipped
when process 0 sees its file (parallel.exists), so all processes make the same jitted calls.
"""

import os
import time
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from lottery_jax import checkpoint as ckpt_lib
from lottery_jax import loss as loss_lib
from lottery_jax import masks as masks_lib
from lottery_jax import optim
from lottery_jax import parallel
from lottery_jax import pruning
from lottery_jax import rundir
from lottery_jax import train as train_lib
from lottery_jax import train_many
from lottery_jax.data import batching
from lottery_jax.data.dataset import Dataset
from lottery_jax.data.distilled import DistilledSet
from lottery_jax.distill import dsa, dsa_train
from lottery_jax.errors import UserInputError, unknown_choice

PRODUCERS = ("imp", "distilled", "hybrid", "random")
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
  """
  step_fn: Any
  tx: Any
  num_steps: int
  batch_size: int
  checkpoint_every: int
  log_every: int
  multi_step_fn: Any = None


def make_recipe(model, train_config, num_examples: int, crop_padding: int, flip: bool,
                num_steps: int, dsa_params: dsa.DsaParams | None = None,
                together: bool = False) -> Recipe:
  """A Recipe for `num_steps` steps of train_config's optimizer and schedule.

  With `dsa_params`, every example is augmented by its own DSA draw (as the distilled-pruning
  authors train on distilled data) instead of crop_padding / flip; `together` adds the step
  vmapped over copies (crop/flip recipes only)."""
  tx, schedule = optim.from_recipe(train_config, num_examples, num_steps)
  if dsa_params is not None:
    if together:
      raise ValueError("training copies together is for crop/flip recipes, not DSA ones")
    step_fn = dsa_train.make_train_step(model, tx, dsa_params, schedule)
  else:
    step_fn = train_lib.make_train_step(model, tx, schedule, crop_padding, flip)
  multi = (train_many.make_multi_train_step(model, tx, schedule, crop_padding, flip)
           if together else None)
  return Recipe(step_fn, tx, num_steps, train_config.batch_size,
                train_config.checkpoint_every, train_config.log_every, multi)


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


class Pipeline:
  """The stages of one replicate, each computed once and read back from disk afterwards.

  Holds only what every stage needs (data, model, recipes, keys, directories); all results
  live in the run directory.
  """

  def __init__(self, config, data: Dataset, distilled: DistilledSet | None, model, real: Recipe,
               syn: Recipe | None, eval_step, replicate: int, workdir: str, metrics_log,
               mesh=None):
    self.config, self.data, self.distilled, self.model = config, data, distilled, model
    self.real, self.syn, self.eval_step = real, syn, eval_step
    self.replicate, self.mesh, self.metrics_log = replicate, mesh, metrics_log
    self.dir = os.path.join(workdir, f"replicate_{replicate}")
    self.keys = replicate_keys(config.seeds, replicate)
    self.theta0, self.batch_stats0 = train_lib.init_variables(model, self.keys.init,
                                                              data.image_shape)
    self.ones = masks_lib.init_masks(self.theta0, prunable_predicate(
        self.theta0, config.lottery.dense_layers))
    self.rewind_steps = self._rewind_steps()
    self._rewound = None  # (theta_k, batch_stats_k, k) once computed.

  # ---- directories -------------------------------------------------------------------
  def round_dir(self, producer: str, r: int) -> str:
    """Where producer's round r lives (round 0 is the shared dense run)."""
    if r == 0:
      return os.path.join(self.dir, "dense")
    if producer == "hybrid" and r <= self.config.lottery.hybrid_syn_rounds:
      producer = "distilled"
    return os.path.join(self.dir, producer, f"round_{r}")

  # ---- training stages ---------------------------------------------------------------
  def _train(self, recipe: Recipe, images, labels, params, batch_stats, masks, stage_dir: str,
             desc: str, start_step: int = 0, num_steps: int | None = None, copy: int = 0):
    """Train with the replicate's data-order and augmentation keys; copy c > 0 (the second
    network of a linear-mode-connectivity pair) uses fold_in(key, c) of both."""
    state = train_lib.new_state(params, batch_stats, masks, recipe.tx)
    state = state.replace(step=jnp.asarray(start_step, jnp.int32))
    data_key, train_key = self._copy_keys(copy)
    return train_lib.fit(
        state, recipe.step_fn, images, labels, num_steps=num_steps or recipe.num_steps,
        batch_size=recipe.batch_size, data_key=data_key, train_key=train_key, mesh=self.mesh,
        checkpoint_dir=os.path.join(stage_dir, "checkpoints"),
        checkpoint_every=recipe.checkpoint_every, log_every=recipe.log_every,
        metrics_log=self.metrics_log, desc=desc,
        log_fields={"replicate": self.replicate})

  def _copy_keys(self, copy: int):
    """(data-order key, augmentation key) of copy c: the replicate's, fold_in(., c) for c > 0."""
    data_key, train_key = self.keys.data_order, self.keys.augment
    if copy:
      data_key, train_key = jax.random.fold_in(data_key, copy), jax.random.fold_in(train_key, copy)
    return data_key, train_key

  def _train_pair(self, producer: str, r: int, masks) -> None:
    """Copies 0 and 1 of round r's real training, together (train_many), to their final
    checkpoints in real/ and real_b/, when the recipe trains copies together, the stability
    stage will need copy 1 (LMC on this replicate), neither copy has a result and their
    checkpoints stopped at one step (else each resumes alone in real_stage). Each copy
    computes what its own `fit` would."""
    st = self.config.stability
    if (self.real.multi_step_fn is None or "lmc" not in st.analyses
        or self.replicate >= st.replicates
        or (producer if r else "dense") not in tuple(st.lmc_producers)):
      return
    dirs = [os.path.join(self.round_dir(producer, r), d) for d in ("real", "real_b")]
    if any(os.path.exists(os.path.join(d, "result.json")) for d in dirs):
      return
    ckpts = [os.path.join(d, "checkpoints") for d in dirs]
    if len({ckpt_lib.manager(c).latest_step() for c in ckpts}) > 1:
      return
    params, batch_stats, start = (self.rewind_point(producer) if r > 0
                                  else (self.theta0, self.batch_stats0, 0))
    states = [train_lib.new_state(params, batch_stats, masks, self.real.tx).replace(
        step=jnp.asarray(start, jnp.int32)) for _ in range(2)]
    keys = [self._copy_keys(c) for c in range(2)]
    name = f"r{self.replicate} {producer if r else 'dense'} round {r} real"
    train_many.fit_many(
        states, self.real.multi_step_fn, self.data.train_images, self.data.train_labels,
        num_steps=self.real.num_steps, batch_size=self.real.batch_size,
        data_keys=[k[0] for k in keys], train_keys=[k[1] for k in keys], mesh=self.mesh,
        checkpoint_dirs=ckpts, checkpoint_every=self.real.checkpoint_every,
        log_every=self.real.log_every, metrics_log=self.metrics_log,
        descs=[name, f"{name} (copy B)"], log_fields={"replicate": self.replicate})

  def _rewind_steps(self) -> int:
    per_epoch = batching.steps_per_epoch(len(self.data.train_labels), self.real.batch_size)
    steps = int(round(self.config.lottery.rewind_epochs * per_epoch))
    return min(steps, self.real.num_steps - 1) if steps > 0 else 0

  def rewind_point(self, producer: str):
    """(params, batch_stats, step) that round r >= 1 of `producer` trains from."""
    if producer != "imp" or self.rewind_steps == 0:
      return self.theta0, self.batch_stats0, 0
    if self._rewound is None:
      self._rewound = self._train_rewind()
    return self._rewound

  def _train_rewind(self):
    stage_dir = os.path.join(self.dir, "rewind")
    state = self._train(self.real, self.data.train_images, self.data.train_labels, self.theta0,
                        self.batch_stats0, self.ones, stage_dir,
                        desc=f"rewind k={self.rewind_steps}", num_steps=self.rewind_steps)
    return state.params, state.batch_stats, self.rewind_steps

  def real_stage(self, producer: str, r: int, masks, copy: int = 0):
    """Train round r's mask on real data from the rewind point; (state, result dict).

    copy 1 is the same network trained on a second data order (for linear mode
    connectivity), in `real_b/`."""
    stage_dir = os.path.join(self.round_dir(producer, r), "real_b" if copy else "real")
    params, batch_stats, start = (self.rewind_point(producer) if r > 0
                                  else (self.theta0, self.batch_stats0, 0))
    began = time.time()
    if copy == 0:  # Copy 0's wall time then covers both copies.
      self._train_pair(producer, r, masks)
    state = self._train(self.real, self.data.train_images, self.data.train_labels, params,
                        batch_stats, masks, stage_dir,
                        desc=f"r{self.replicate} {producer if r else 'dense'} round {r} real"
                        + (" (copy B)" if copy else ""), start_step=start, copy=copy)
    result_path = os.path.join(stage_dir, "result.json")
    if parallel.exists(result_path):
      return state, rundir.read_json(result_path)
    test = loss_lib.evaluate(self.eval_step, state.params, state.batch_stats,
                              self.data.test_images, self.data.test_labels,
                              self.config.train.eval_batch_size, self.mesh)
    steps = self.real.num_steps - start
    result = {"round": r, "sparsity": masks_lib.sparsity(masks), "test_accuracy": test["accuracy"],
              "test_loss": test["loss"], "train_steps": steps,
              "examples": steps * min(self.real.batch_size, len(self.data.train_labels)),
              "wall_time_s": time.time() - began}
    rundir.write_json(result_path, result)
    self.metrics_log.write(event="real_result", producer=producer, replicate=self.replicate,
                           copy=copy, **result)
    return state, result

  def syn_stage(self, producer: str, r: int, masks):
    """Train round r's mask on the distilled set from theta_0; (state, result dict)."""
    stage_dir = os.path.join(self.round_dir(producer, r), "distilled")
    began = time.time()
    state = self._train(self.syn, self.distilled.images, self.distilled.labels, self.theta0,
                        self.batch_stats0, masks, stage_dir,
                        desc=f"r{self.replicate} distilled round {r}")
    result_path = os.path.join(stage_dir, "result.json")
    if parallel.exists(result_path):
      return state, rundir.read_json(result_path)
    result = {"round": r, "train_steps": self.syn.num_steps,
              "examples": self.syn.num_steps * min(self.syn.batch_size,
                                                   len(self.distilled.labels)),
              "wall_time_s": time.time() - began}
    rundir.write_json(result_path, result)
    return state, result

  # ---- masks -------------------------------------------------------------------------
  def mask(self, producer: str, r: int):
    """(mask of round r, {'examples', 'production_time_s'} of producing it from round r-1)."""
    if r == 0:
      return self.ones, {"examples": 0, "production_time_s": 0.0}
    mask_path = os.path.join(self.round_dir(producer, r), "mask.npz")
    used_path = os.path.join(self.round_dir(producer, r), "mask.json")
    if parallel.agreed(os.path.exists(mask_path) and os.path.exists(used_path)):
      return ckpt_lib.load_npz_tree(mask_path, self.ones), rundir.read_json(used_path)
    previous = self.mask(producer, r - 1)[0]
    lot = self.config.lottery
    began = time.time()
    if producer == "random":
      key = jax.random.fold_in(self.keys.pruning, r)
      if lot.random_reference == "imp":
        new = pruning.prune_random_to_match(previous, self.mask("imp", r)[0], key)
      else:
        new = pruning.prune(self.theta0, previous, lot.fraction, scope=lot.scope,
                            method="random", key=key)
      produced = {"examples": 0, "production_time_s": time.time() - began}
    else:
      if producer == "distilled" or (producer == "hybrid" and r <= lot.hybrid_syn_rounds):
        trained, result = self.syn_stage(producer, r - 1, previous)
      else:
        trained, result = self.real_stage(producer, r - 1, previous)
      prune_began = time.time()
      new = pruning.prune(trained.params, previous, lot.fraction, scope=lot.scope)
      produced = {"examples": result["examples"],
                  "production_time_s": result["wall_time_s"] + time.time() - prune_began}
    ckpt_lib.save_npz_tree(mask_path, new)
    rundir.write_json(used_path, dict(produced, sparsity=masks_lib.sparsity(new)))
    return new, produced

  def run_producer(self, producer: str, rounds: int | None = None) -> list[dict]:
    """Rounds 0..R of `producer` (R = lottery.rounds unless given): one record per round with
    its real-data result, cumulative data points used and mask-production time."""
    records, used, spent = [], 0, 0.0
    rounds = self.config.lottery.rounds if rounds is None else rounds
    for r in range(rounds + 1):
      m, produced = self.mask(producer, r)
      used += produced["examples"]
      spent += produced["production_time_s"]
      _, result = self.real_stage(producer, r, m)
      records.append(dict(result, data_points_used=used, mask_time_s=spent,
                          layerwise_sparsity=masks_lib.layerwise_sparsity(m)))
    return records


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
  if "hybrid" in lot.producers and not 0 <= lot.hybrid_syn_rounds <= lot.rounds:
    raise UserInputError(f"lottery.hybrid_syn_rounds must be in [0, rounds={lot.rounds}], got "
                         f"{lot.hybrid_syn_rounds}")


def prunable_predicate(params, dense_layers):
  """masks.is_prunable minus the modules in lottery.dense_layers (UserInputError if unknown)."""
  return masks_lib.dense_layers_predicate(params, dense_layers, "lottery.dense_layers")


def check_dense_layers(model, dense_layers) -> None:
  """UserInputError unless every name in lottery.dense_layers is a module of `model` with a
  prunable kernel (checked on shapes only: jax.eval_shape, no compute)."""
  params = jax.eval_shape(
      lambda: train_lib.init_variables(model, jax.random.key(0), (32, 32, 3))[0])
  prunable_predicate(params, dense_layers)


def needs_distilled(lot) -> bool:
  """Whether any producer trains on the distilled set."""
  return "distilled" in lot.producers or ("hybrid" in lot.producers and lot.hybrid_syn_rounds)


def summarize(per_replicate: list[dict[str, list[dict]]]) -> dict:
  """{producer: [per round: sparsity, accuracy mean/std over replicates, data points, ...]}."""
  out = {}
  for producer in per_replicate[0]:
    rounds = []
    for r, first in enumerate(per_replicate[0][producer]):
      recs = [rep[producer][r] for rep in per_replicate]
      acc = np.array([x["test_accuracy"] for x in recs])
      loss = np.array([x["test_loss"] for x in recs])
      rounds.append({
          "round": r, "sparsity": float(np.mean([x["sparsity"] for x in recs])),
          "accuracy_mean": float(acc.mean()), "accuracy_std": float(acc.std()),
          "loss_mean": float(loss.mean()), "loss_std": float(loss.std()),
          "accuracies": acc.tolist(),
          "data_points_used": int(np.mean([x["data_points_used"] for x in recs])),
          "mask_time_s": float(np.mean([x["mask_time_s"] for x in recs])),
          "train_time_s": float(np.mean([x["wall_time_s"] for x in recs])),
          "layerwise_sparsity": first["layerwise_sparsity"],
      })
    out[producer] = rounds
  return out
