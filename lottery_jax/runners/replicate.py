"""One replicate of the lottery experiment in its run directory: the IMP rounds of every mask
producer (imp.imp_round) and the real-data training that evaluates every mask, each stage
computed once (rundir.cached) and read back afterwards.

On disk: lottery_jax.layout (replicate_<s>/dense/, <producer>/round_<r>/ with mask.npz,
mask.json, real/, real_b/, distilled/; rewind/ for theta_k). Each stage writes `result.json`
(a mask: mask.npz, then mask.json) when done and is skipped when it exists (a mask also needs
mask.npz and the result of the training it was pruned from, or it is remade); training stages
also resume from their newest checkpoint, so a killed run picks up where it stopped. With
several processes, every process runs every stage
(process 0 writes the files) and a stage is skipped when process 0 sees its file
(parallel.exists), so all processes make the same jitted calls.
"""

import os
import time
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from lottery_jax import checkpoint as ckpt_lib
from lottery_jax import imp
from lottery_jax import layout
from lottery_jax import loss as loss_lib
from lottery_jax import masks as masks_lib
from lottery_jax import plan
from lottery_jax import pruning
from lottery_jax import rundir
from lottery_jax import train as train_lib
from lottery_jax import train_many
from lottery_jax.data.dataset import Dataset
from lottery_jax.data.distilled_npz import DistilledSet


class Setup(NamedTuple):
  """What every replicate of one run shares.

  Attributes:
    lottery: config.lottery (producers, rounds, fraction, scope, rewind, references).
    data: the real data; distilled: the distilled set (None when no producer trains on it).
    model: the flax module; real, syn: the real and distilled training imp.Recipes.
    eval_step: the jitted evaluation step; eval_batch_size: examples per evaluation call.
    workdir: the run directory; metrics_log: its rundir.MetricsLog; mesh: the device mesh.
    lmc_replicates: replicates whose LMC pairs the stability stage will train (0: none)...
    lmc_producers: ... for these producers ('dense' for round 0).
  """
  lottery: Any
  data: Dataset
  distilled: DistilledSet | None
  model: Any
  real: imp.Recipe
  syn: imp.Recipe | None
  eval_step: Any
  eval_batch_size: int
  workdir: str
  metrics_log: Any
  mesh: Any
  lmc_replicates: int
  lmc_producers: tuple[str, ...]


class Replicate:
  """The stages of replicate `index`: keys from the named seeds, theta_0 and the all-True mask;
  every result lives in the run directory."""

  def __init__(self, setup: Setup, seeds, index: int):
    self.setup, self.index = setup, index
    self.dir = layout.replicate_dir(setup.workdir, index)
    self.keys = imp.replicate_keys(seeds, index)
    self.theta0, self.batch_stats0 = train_lib.init_variables(setup.model, self.keys.init,
                                                              setup.data.image_shape)
    self.ones = masks_lib.init_masks(self.theta0, imp.prunable_predicate(
        self.theta0, setup.lottery.dense_layers))
    self.rewind_steps = self._rewind_steps()
    self._rewound = None  # imp.RewindPoint at theta_k once computed.
    self.apply_fn = imp.eval_apply_fn(setup.model, self.batch_stats0)  # SNIP's and GraSP's.
    self.synflow_apply_fn = imp.synflow_apply_fn(setup.model, self.batch_stats0)

  # ---- directories -------------------------------------------------------------------
  def round_dir(self, producer: str, r: int) -> str:
    """Where producer's round r lives (round 0 is the shared dense run; layout.round_dir)."""
    return layout.round_dir(self.dir, producer, r, self.setup.lottery.hybrid_syn_rounds)

  # ---- training stages ---------------------------------------------------------------
  def _train(self, recipe: imp.Recipe, images, labels, start: imp.RewindPoint, masks,
             stage_dir: str, desc: str, num_steps: int | None = None, second: bool = False):
    """Train from `start` with the replicate's data-order and augmentation keys (the second
    network of a linear-mode-connectivity pair: `pair_keys(second=True)`)."""
    s = self.setup
    state = train_lib.new_state(start.params, start.batch_stats, masks, recipe.tx)
    state = state.replace(step=jnp.asarray(start.step, jnp.int32))
    data_key, train_key = self.pair_keys(second)
    return train_lib.fit(
        state, recipe.step_fn, images, labels, num_steps=num_steps or recipe.num_steps,
        batch_size=recipe.batch_size, data_key=data_key, train_key=train_key, mesh=s.mesh,
        checkpoint_dir=os.path.join(stage_dir, layout.CHECKPOINTS),
        checkpoint_every=recipe.checkpoint_every, log_every=recipe.log_every,
        metrics_log=s.metrics_log, desc=desc, log_fields={"replicate": self.index},
        loop=recipe.loop, block_steps=recipe.block_steps)

  def pair_keys(self, second: bool = False):
    """(data-order key, augmentation key) of the first network of an LMC pair (the
    replicate's keys), or of the second (fold_in(., 1) of both)."""
    data_key, train_key = self.keys.data_order, self.keys.augment
    if second:
      data_key, train_key = jax.random.fold_in(data_key, 1), jax.random.fold_in(train_key, 1)
    return data_key, train_key

  def _train_pair(self, producer: str, r: int, masks) -> None:
    """Both networks of round r's LMC pair, together (train_many), to their final checkpoints
    in real/ and real_b/, when the recipe trains copies together, the stability stage will
    need the second network (LMC on this replicate) and neither has a result. A pair killed
    between its two saves resumes together from the step both saved (train_many.fit_many),
    so it ends bit-identical to an uninterrupted pair; it is not bit-identical to the two
    trained one after another (see docs/lottery-run.md, train.pairs_together)."""
    s = self.setup
    if (s.real.multi_step_fn is None or self.index >= s.lmc_replicates
        or (producer if r else "dense") not in s.lmc_producers):
      return
    dirs = [layout.stage_dir(self.round_dir(producer, r), d)
            for d in (layout.REAL, layout.REAL_B)]
    if any(os.path.exists(os.path.join(d, layout.RESULT)) for d in dirs):
      return
    ckpts = [os.path.join(d, layout.CHECKPOINTS) for d in dirs]
    start = self.start_point(producer, r)
    states = [train_lib.new_state(start.params, start.batch_stats, masks, s.real.tx).replace(
        step=jnp.asarray(start.step, jnp.int32)) for _ in range(2)]
    keys = [self.pair_keys(second) for second in (False, True)]
    name = f"r{self.index} {producer if r else 'dense'} round {r} real"
    train_many.fit_many(
        states, s.real.multi_step_fn, s.data.train_images, s.data.train_labels,
        num_steps=s.real.num_steps, batch_size=s.real.batch_size,
        data_keys=[k[0] for k in keys], train_keys=[k[1] for k in keys], mesh=s.mesh,
        checkpoint_dirs=ckpts, checkpoint_every=s.real.checkpoint_every,
        log_every=s.real.log_every, metrics_log=s.metrics_log,
        descs=[name, f"{name} (copy B)"], log_fields={"replicate": self.index},
        loop=s.real.loop, block_steps=s.real.block_steps)

  def _rewind_steps(self) -> int:
    s = self.setup
    # plan.check_against_data refused a rewind point outside [1, num_steps) before any work.
    return int(round(plan.rewind_steps(s.lottery, len(s.data.train_labels), s.real.batch_size)))

  def rewind_point(self, producer: str) -> imp.RewindPoint:
    """Where round r >= 1 of `producer` trains from: theta_k for IMP with k > 0, else
    theta_0."""
    if producer != "imp" or self.rewind_steps == 0:
      return imp.RewindPoint(self.theta0, self.batch_stats0, 0)
    if self._rewound is None:
      s = self.setup
      state = self._train(s.real, s.data.train_images, s.data.train_labels,
                          imp.RewindPoint(self.theta0, self.batch_stats0, 0), self.ones,
                          layout.rewind_dir(self.dir), desc=f"rewind k={self.rewind_steps}",
                          num_steps=self.rewind_steps)
      self._rewound = imp.RewindPoint(state.params, state.batch_stats, self.rewind_steps)
    return self._rewound

  def start_point(self, producer: str, r: int) -> imp.RewindPoint:
    """Where round r's real training starts: theta_0 for round 0, the rewind point after."""
    if r == 0:
      return imp.RewindPoint(self.theta0, self.batch_stats0, 0)
    return self.rewind_point(producer)

  def real_stage(self, producer: str, r: int, masks, second: bool = False):
    """Train round r's mask on real data from the rewind point; (state, result dict).

    `second`: the same network trained on a second data order (the other end of a linear
    mode connectivity pair), in `real_b/`."""
    s = self.setup
    stage_dir = layout.stage_dir(self.round_dir(producer, r),
                                 layout.REAL_B if second else layout.REAL)
    start = self.start_point(producer, r)
    began = time.time()
    if not second:  # The first network's wall time then covers both.
      self._train_pair(producer, r, masks)
    state = self._train(s.real, s.data.train_images, s.data.train_labels, start, masks,
                        stage_dir, desc=f"r{self.index} {producer if r else 'dense'} round {r} "
                        "real" + (" (copy B)" if second else ""), second=second)

    def evaluate():
      test = loss_lib.evaluate(s.eval_step, state.params, state.batch_stats,
                                s.data.test_images, s.data.test_labels, s.eval_batch_size, s.mesh)
      steps = s.real.num_steps - start.step
      result = {"round": r, "sparsity": masks_lib.sparsity(masks),
                "test_accuracy": test["accuracy"], "test_loss": test["loss"],
                **self._validation(state),
                "train_steps": steps,
                "examples": steps * min(s.real.batch_size, len(s.data.train_labels)),
                "wall_time_s": time.time() - began}
      s.metrics_log.write(event="real_result", producer=producer, replicate=self.index,
                          copy=int(second), **result)
      return result

    return state, rundir.cached(os.path.join(stage_dir, layout.RESULT), evaluate)

  def _validation(self, state) -> dict:
    """{'val_accuracy', 'val_loss'} on the held-out validation split (data.validation_examples;
    {} without one)."""
    s = self.setup
    if not s.data.has_validation:
      return {}
    val = loss_lib.evaluate(s.eval_step, state.params, state.batch_stats, s.data.val_images,
                            s.data.val_labels, s.eval_batch_size, s.mesh)
    return {"val_accuracy": val["accuracy"], "val_loss": val["loss"]}

  def syn_stage(self, producer: str, r: int, masks):
    """Train round r's mask on the distilled set from theta_0; (state, result dict)."""
    s = self.setup
    stage_dir = layout.stage_dir(self.round_dir(producer, r), layout.DISTILLED)
    began = time.time()
    state = self._train(s.syn, s.distilled.images, s.distilled.labels,
                        imp.RewindPoint(self.theta0, self.batch_stats0, 0), masks, stage_dir,
                        desc=f"r{self.index} distilled round {r}")
    result = lambda: {"round": r, "train_steps": s.syn.num_steps,
                      "examples": s.syn.num_steps * min(s.syn.batch_size,
                                                        len(s.distilled.labels)),
                      "wall_time_s": time.time() - began}
    return state, rundir.cached(os.path.join(stage_dir, layout.RESULT), result)

  # ---- masks -------------------------------------------------------------------------
  def mask(self, producer: str, r: int):
    """(mask of round r, {'examples', 'production_time_s', 'sparsity'} of producing it from
    round r-1)."""
    if r == 0:
      return self.ones, {"examples": 0, "production_time_s": 0.0}
    directory = self.round_dir(producer, r)
    mask_path, used_path = (os.path.join(directory, f)
                            for f in (layout.MASK, layout.MASK_RECORD))

    def save(_, value):  # mask.json last: its presence means both are complete.
      ckpt_lib.save_npz_tree(mask_path, value[0])
      rundir.write_json(used_path, value[1])

    read = lambda _: (ckpt_lib.load_npz_tree(mask_path, self.ones), rundir.read_json(used_path))
    return rundir.cached(used_path, lambda: self._produce(producer, r), read=read, write=save,
                         requires=(mask_path, *self._pruned_from(producer, r)))

  def _pruned_from(self, producer: str, r: int) -> list[str]:
    """The result.json of the training round r's mask was pruned from ([] for producers that
    do not train): a rerun remakes the mask, and so that record, when it was deleted."""
    if producer in imp.PAI_PRODUCERS or producer == "random":
      return []
    stage = layout.DISTILLED if self._on_distilled(producer, r) else layout.REAL
    return [os.path.join(layout.stage_dir(self.round_dir(producer, r - 1), stage),
                         layout.RESULT)]

  def _on_distilled(self, producer: str, r: int) -> bool:
    """Whether `producer` makes round r's mask by training round r-1 on the distilled set."""
    return producer == "distilled" or (producer == "hybrid"
                                       and r <= self.setup.lottery.hybrid_syn_rounds)

  def _produce(self, producer: str, r: int):
    """Round r's mask from round r-1's: one IMP round (train on real or distilled data,
    prune, rewind) or a random pruning."""
    previous = self.mask(producer, r - 1)[0]
    lot = self.setup.lottery
    began = time.time()
    if producer in imp.PAI_PRODUCERS:
      new, examples = self._prune_at_init(producer, r)
      produced = {"examples": examples, "production_time_s": time.time() - began}
    elif producer == "random":
      key = jax.random.fold_in(self.keys.pruning, r)
      if lot.random_reference == "imp":
        new = pruning.prune_random_to_match(previous, self.mask("imp", r)[0], key)
      else:
        new = pruning.prune(self.theta0, previous, lot.fraction, scope=lot.scope,
                            method="random", key=key)
      produced = {"examples": 0, "production_time_s": time.time() - began}
    else:
      on_distilled = self._on_distilled(producer, r)
      results = []

      def train_fn(_, m):  # The stage finds `start` itself (and its checkpoints).
        stage = self.syn_stage if on_distilled else self.real_stage
        state, result = stage(producer, r - 1, m)
        results.append((result, time.time()))
        return state

      start = (imp.RewindPoint(self.theta0, self.batch_stats0, 0) if on_distilled
               else self.start_point(producer, r - 1))
      new, _ = imp.imp_round(previous, train_fn, imp.magnitude_prune_fn(lot.fraction, lot.scope),
                             start)
      result, trained_at = results[0]
      produced = {"examples": result["examples"],
                  "production_time_s": result["wall_time_s"] + time.time() - trained_at}
    return new, dict(produced, sparsity=masks_lib.sparsity(new))

  def _prune_at_init(self, producer: str, r: int):
    """(round r's mask: theta_0 pruned from dense to r rounds' sparsity by the producer's
    score, examples scored). The batch is `lottery.pai_examples` training examples drawn
    with fold_in(seeds.pruning key, 0) (random pruning's rounds use 1, 2, ...)."""
    s, lot = self.setup, self.setup.lottery
    labels = s.data.train_labels
    n = int(lot.pai_examples)  # plan.check_against_data refused more than the train split.
    order = jax.random.permutation(jax.random.fold_in(self.keys.pruning, 0), len(labels))
    idx = np.sort(np.asarray(order[:n]))
    batch = (jnp.asarray(s.data.train_images[idx]), jnp.asarray(labels[idx]))
    iterations = imp.pai_iterations(lot, producer)
    new = pruning.prune(self.theta0, self.ones, imp.pai_fraction(lot.fraction, r),
                        scope=lot.scope, method=producer, iterations=iterations,
                        apply_fn=self.synflow_apply_fn if producer == "synflow"
                        else self.apply_fn, batch=batch)
    return new, 0 if producer == "synflow" else n * iterations

  def run_producer(self, producer: str, rounds: int | None = None) -> list[dict]:
    """Rounds 0..R of `producer` (R = lottery.rounds unless given): one record per round it
    trains on real data (imp.trained_rounds) with its real-data result, cumulative data
    points used and mask-production time (every round's mask counts, trained or not)."""
    records, used, spent = [], 0, 0.0
    rounds = self.setup.lottery.rounds if rounds is None else rounds
    trained = imp.trained_rounds(self.setup.lottery, producer)
    for r in range(rounds + 1):
      m, produced = self.mask(producer, r)  # Every round's: the next may be pruned from it.
      used += produced["examples"]
      spent += produced["production_time_s"]
      if r not in trained:  # lottery.real_training_rounds leaves it out.
        continue
      _, result = self.real_stage(producer, r, m)
      records.append(dict(result, data_points_used=used, mask_time_s=spent,
                          layerwise_sparsity=masks_lib.layerwise_sparsity(m)))
    return records

  def trained(self, producer: str, r: int, second: bool = False):
    """(round r's mask, its trained state on real data): the first network of the LMC pair,
    or the second."""
    m = self.mask(producer, r)[0]
    return m, self.real_stage(producer, r, m, second=second)[0]
