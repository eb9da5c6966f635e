"""The analyses stage of the lottery experiment (the stability library run over a run
directory): linear mode connectivity for every round's mask (and distances between pairs and
replicates), landscapes (on real and on distilled images), Hessian diagonals, sharpness and
layerwise LMC at chosen rounds, mask statistics. Runs after the pruning stage
(runners/lottery.py), on the replicates `config.stability.replicates` says, each analysis
saved as it finishes and skipped when its file exists (rundir.cached); sweeps stay within
stability.memory_budget_gb.

Per round directory (lottery_jax.layout): real_b/ (the second network of the LMC pair:
same init and mask, second data order), lmc.json, landscape.npz (landscape_distilled.npz),
hessian.json, sharpness.json, layerwise_lmc.json.
"""

import logging
import os
from typing import NamedTuple

import jax
import numpy as np

from lottery_jax import atomic
from lottery_jax import imp
from lottery_jax import layout
from lottery_jax import masks as masks_lib
from lottery_jax import parallel
from lottery_jax import rundir
from lottery_jax import stability
from lottery_jax.data import stratified
from lottery_jax.errors import UserInputError
from lottery_jax.stability import probe_keys
from lottery_jax.stability import summaries

# Probe groups of a Hessian estimate: its split-half reliability and jackknife errors come
# from them (stability.hessian.hessian_diagonal_groups).
HESSIAN_GROUPS = 8

log = logging.getLogger(__name__)


def detail_targets(st, lottery_config) -> tuple[list[str], list[int]]:
  """The producers and rounds that get landscapes and Hessians: those of
  stability.detail_producers / detail_rounds that the pruning stage makes (others are left out
  with a log line, so shrinking lottery.rounds or producers needs no second override)."""
  producers = [p for p in st.detail_producers if p in lottery_config.producers]
  rounds = [r for r in st.detail_rounds if 0 <= r <= lottery_config.rounds]
  if len(producers) < len(st.detail_producers) or len(rounds) < len(st.detail_rounds):
    log.info("landscapes and Hessians for producers %s at rounds %s (of the configured %s at %s)",
             producers, rounds, tuple(st.detail_producers), tuple(st.detail_rounds))
  return producers, rounds


def lmc_targets(st, lottery_config) -> tuple[str, ...]:
  """'dense' and the producers of stability.lmc_producers that the pruning stage makes."""
  made = ("dense",) + tuple(lottery_config.producers)
  return tuple(p for p in made if p in tuple(st.lmc_producers))


class AnalysisSample(NamedTuple):
  """The real train examples every analysis of a run measures on.

  Attributes:
    images, labels: the run's (preprocessed) train split.
    order: int64 (N,) a class-stratified random order of it (data.stratified, from
      seeds.analysis): an analysis of n examples takes the first n, Hessian batch b the b-th
      slice, so each is class-balanced within one example, and the same for every producer
      and round (paired comparisons).
    num_classes: classes of the split.
  """
  images: np.ndarray
  labels: np.ndarray
  order: np.ndarray
  num_classes: int

  def take(self, n: int, start: int = 0):
    """(images, labels) of order[start:start + n]; n <= 0: the whole split (in order)."""
    idx = self.order[start:] if n <= 0 else self.order[start:start + n]
    if n > 0 and len(idx) < n:
      raise UserInputError(f"an analysis asks for {n} train examples from position {start}, "
                           f"but the train split has {len(self.order)}")
    idx = np.sort(idx)
    return self.images[idx], self.labels[idx]

  def per_class(self, labels) -> list[int]:
    return stratified.examples_per_class(labels, self.num_classes)


def analysis_sample(data, analysis_seed: int) -> AnalysisSample:
  """The run's AnalysisSample: its train split in the stratified order of key(seed)."""
  order = stratified.stratified_order(data.train_labels, data.num_classes,
                                      jax.random.key(analysis_seed))
  return AnalysisSample(data.train_images, data.train_labels, order, data.num_classes)


def _bn_images(sample: AnalysisSample, st, batch_stats):
  """BatchNorm models: the first bn_examples of the sample, or all of it when it is smaller
  (statistics recomputed on them)."""
  if not jax.tree.leaves(batch_stats):
    return None
  return sample.take(min(st.bn_examples, len(sample.order)))[0]


def lmc_stage(rep, st, producer: str, r: int, sample: AnalysisSample) -> dict:
  """Train the second network of round r's LMC pair, evaluate the straight path between the
  two on the first stability.lmc_examples of the stratified train sample, on the whole
  validation split (when the run holds one out: data.validation_examples; the split that
  choices are made on) and on the whole test split (stability config `st`), with the distance
  between them (RuntimeError if they are identical: a barrier of 0 would then mean nothing)."""

  def compute():
    m, a = rep.trained(producer, r)
    _, b = rep.trained(producer, r, second=True)
    distance = stability.endpoint_distance(a.params, b.params)
    if distance["l2"] == 0.0:
      raise RuntimeError(
          f"the two networks of {producer} round {r}'s LMC pair are identical (distance 0), "
          "so its barrier would be 0 by construction: the second data order "
          "(Replicate.pair_keys(second=True)) did not reach the second network's training")
    alphas = stability.default_alphas(st.num_alphas)
    data = rep.setup.data
    out = {"round": r, "sparsity": masks_lib.sparsity(m), "alphas": alphas.tolist(),
           "distance": distance}
    bn = _bn_images(sample, st, a.batch_stats)
    splits = {"train": sample.take(st.lmc_examples)}
    if data.has_validation:
      splits["val"] = (data.val_images, data.val_labels)
    splits["test"] = (data.test_images, data.test_labels)
    for split, (x, y) in splits.items():
      metrics = stability.path_metrics(
          rep.setup.model, a.params, b.params, alphas, x, y, batch_stats_a=a.batch_stats,
          batch_stats_b=b.batch_stats, chunk_size=st.chunk_size,
          alpha_batch=st.point_batch or None, bn_images=bn, mesh=rep.setup.mesh,
          memory_budget_gb=st.memory_budget_gb)
      out[split] = {"loss": metrics["loss_A"].tolist(),
                    "accuracy": metrics["accuracy_A"].tolist(),
                    "barriers": stability.path_barriers(metrics),
                    "examples_per_class": sample.per_class(y)}
    return out

  second = os.path.join(layout.stage_dir(rep.round_dir(producer, r), layout.REAL_B),
                        layout.RESULT)  # Remade with lmc.json when deleted.
  return rundir.cached(os.path.join(rep.round_dir(producer, r), layout.LMC), compute,
                       requires=(second,))


def landscape_stage(rep, st, probes_seed: int, producer: str, r: int,
                    figure_path: str, sample: AnalysisSample, on_distilled: bool = False) -> dict:
  """Loss on the plane through the two networks of round r's LMC pair (grid_size^2 points),
  on the first stability.grid_examples of the stratified train sample, or, `on_distilled`, on
  every image of the run's distilled set as stored (no augmentation): the same plane and grid
  (the directions come from the same key), landscape_distilled.npz."""
  m = rep.mask(producer, r)[0]
  if on_distilled:
    x, y = rep.setup.distilled.images, rep.setup.distilled.labels
  else:
    x, y = sample.take(st.grid_examples)

  def compute():
    _, a = rep.trained(producer, r)
    _, b = rep.trained(producer, r, second=True)
    key = probe_keys.key(probes_seed, rep.index, probe_keys.LANDSCAPE, r)
    u, v = stability.plane_directions(a.params, b.params, m, key,
                                      filter_normalize=st.filter_normalize)
    coords_a, coords_b = stability.default_coords(st.grid_size)
    losses = stability.grid_losses(rep.setup.model, a.params, u, v, coords_a, coords_b, x, y,
                                   batch_stats=a.batch_stats,
                                   bn_images=_bn_images(sample, st, a.batch_stats),
                                   point_batch=st.point_batch or None, chunk_size=st.chunk_size,
                                   mesh=rep.setup.mesh, memory_budget_gb=st.memory_budget_gb)
    return {"losses": losses, "coords_a": coords_a, "coords_b": coords_b,
            "examples_per_class": np.asarray(sample.per_class(y), np.int64)}

  def read(path):
    with np.load(path) as f:
      if "examples_per_class" not in f:
        raise UserInputError(f"{path} was computed before the analyses recorded their "
                             "examples (a prefix of the class-ordered train split); delete "
                             "it to recompute it on the stratified sample")
      return {k: f[k] for k in ("losses", "coords_a", "coords_b", "examples_per_class")}

  def write(path, value):
    if parallel.is_writer():
      atomic.write_npz(path, **value)

  name = layout.LANDSCAPE_DISTILLED if on_distilled else layout.LANDSCAPE
  grid = rundir.cached(os.path.join(rep.round_dir(producer, r), name), compute,
                       read=read, write=write)
  losses = grid["losses"]
  if parallel.is_writer():
    stability.plot_landscape(losses, grid["coords_a"], grid["coords_b"], figure_path,
                             title=f"{producer}, {100 * masks_lib.sparsity(m):.0f}% sparse: "
                                   + ("distilled-set loss" if on_distilled else "train loss"))
  mid = losses.shape[0] // 2
  return {"round": r, "sparsity": masks_lib.sparsity(m), "min_loss": float(losses.min()),
          "max_loss": float(losses.max()), "grid_size": int(losses.shape[0]),
          "examples_per_class": grid["examples_per_class"].astype(int).tolist(),
          "center_loss": float(losses[mid, mid])}


def hessian_stage(rep, st, probes_seed: int, producer: str, r: int,
                  sample: AnalysisSample) -> dict:
  """Hutchinson diagonal at the first network of round r's LMC pair, on hessian_batches
  consecutive slices of the stratified train sample, with its reliability (split-half
  correlation of the probes) and the standard errors of its summary (stability.hessian)."""

  def compute():
    m, a = rep.trained(producer, r)
    batches = hessian_batches(st, sample)
    groups = _hessian_groups(rep, st, probes_seed, r, m, a, batches)
    labels = np.concatenate([b["label"] for b in batches])
    return dict(stability.summary_with_errors(groups, m), round=r,
                sparsity=masks_lib.sparsity(m), num_probes=st.hessian_probes,
                num_batches=st.hessian_batches, batch_size=st.hessian_batch_size,
                examples_per_class=sample.per_class(labels),
                trace=stability.hessian_trace(groups))

  return rundir.cached(os.path.join(rep.round_dir(producer, r), layout.HESSIAN), compute)


def hessian_batches(st, sample: AnalysisSample) -> list[dict]:
  """The Hessian's (and the sharpness analysis's) batches: hessian_batches consecutive slices
  of hessian_batch_size from the stratified train sample."""
  bs = st.hessian_batch_size
  batches = []
  for i in range(st.hessian_batches):
    x, y = sample.take(bs, start=i * bs)
    batches.append({"image": x, "label": y})
  return batches


def _hessian_groups(rep, st, probes_seed: int, r: int, m, a, batches):
  key = probe_keys.key(probes_seed, rep.index, probe_keys.HESSIAN, r)
  return stability.hessian_diagonal_groups(
      stability.classification_loss(rep.setup.model, a.batch_stats), a.params, batches, key,
      st.hessian_probes, num_groups=HESSIAN_GROUPS, masks=m, probe_batch=st.probe_batch or None)


def sharpness_stage(rep, st, probes_seed: int, producer: str, r: int,
                    sample: AnalysisSample) -> dict:
  """Sharpness at the first network of round r's LMC pair, on the Hessian's batches and kept
  weights: the stability.sharpness_k top eigenvalues (Lanczos, each with its residual), the
  trace (the Hutchinson diagonal's sum, from the Hessian analysis of the same network: its
  hessian.json is computed when missing, or, written before it kept the trace, recomputed
  here from the same probes), lambda_max x ||theta_kept||^2, and the spectral density's
  quadrature nodes and weights (stability.density_probes probes)."""

  def compute():
    m, a = rep.trained(producer, r)
    batches = hessian_batches(st, sample)
    loss_fn = stability.classification_loss(rep.setup.model, a.batch_stats)
    key = probe_keys.key(probes_seed, rep.index, probe_keys.SHARPNESS, r)
    top_key, density_key = jax.random.split(key)
    steps = st.lanczos_steps or None
    top = stability.top_eigenvalues(loss_fn, a.params, batches, top_key, k=st.sharpness_k,
                                    num_steps=steps, masks=m)
    density = stability.spectral_density(loss_fn, a.params, batches, density_key,
                                         num_probes=st.density_probes, num_steps=steps,
                                         masks=m)
    diag = hessian_stage(rep, st, probes_seed, producer, r, sample)
    trace = diag.get("trace") or stability.hessian_trace(
        _hessian_groups(rep, st, probes_seed, r, m, a, batches))
    labels = np.concatenate([b["label"] for b in batches])
    return {"round": r, "sparsity": masks_lib.sparsity(m),
            "top_eigenvalues": top.values_k.tolist(), "residuals": top.residuals_k.tolist(),
            "lanczos_steps": int(top.num_steps),
            "kept_norm_squared": stability.sharpness.kept_norm_squared(a.params, m),
            "scale_normalised": stability.scale_normalised_sharpness(top.values_k[0], a.params,
                                                                     m),
            "trace": trace, "diagonal_std": diag.get("std"),
            "density": {"nodes": density.nodes_PxM.tolist(),
                        "weights": density.weights_PxM.tolist(), "dim": density.dim},
            "num_batches": st.hessian_batches, "batch_size": st.hessian_batch_size,
            "examples_per_class": sample.per_class(labels)}

  return rundir.cached(os.path.join(rep.round_dir(producer, r), layout.SHARPNESS), compute)


def _density_curve(density: dict) -> tuple[np.ndarray, np.ndarray]:
  """(grid, density) of a sharpness record's stored quadrature."""
  quadrature = stability.sharpness.Quadrature(np.asarray(density["nodes"]),
                                              np.asarray(density["weights"]), density["dim"])
  return stability.density_on_grid(quadrature)


def layerwise_lmc_stage(rep, st, producer: str, r: int, sample: AnalysisSample) -> dict:
  """Round r's LMC pair with one layer moved at a time (its kernel, bias and paired
  normalisation, the rest at network A): each layer's loss and error along its path, on the
  first stability.lmc_examples of the stratified train sample and the whole test split, and
  each layer's barriers (stability.layerwise_lmc)."""

  def compute():
    m, a = rep.trained(producer, r)
    _, b = rep.trained(producer, r, second=True)
    alphas = stability.default_alphas(st.num_alphas)
    data = rep.setup.data
    bn = _bn_images(sample, st, a.batch_stats)
    out = {"round": r, "sparsity": masks_lib.sparsity(m), "alphas": alphas.tolist()}
    for split, (x, y) in (("train", sample.take(st.lmc_examples)),
                          ("test", (data.test_images, data.test_labels))):
      metrics = stability.layerwise_path_metrics(
          rep.setup.model, a.params, b.params, alphas, x, y, batch_stats_a=a.batch_stats,
          batch_stats_b=b.batch_stats, chunk_size=st.chunk_size,
          alpha_batch=st.point_batch or None, bn_images=bn, mesh=rep.setup.mesh,
          memory_budget_gb=st.memory_budget_gb)
      out["layers"], out["modules"] = metrics["layers_L"], [list(m_) for m_ in
                                                            metrics["modules_L"]]
      out[split] = {"loss": np.asarray(metrics["loss_LxA"]).tolist(),
                    "accuracy": np.asarray(metrics["accuracy_LxA"]).tolist(),
                    "barriers": stability.layer_barriers(metrics),
                    "examples_per_class": sample.per_class(y)}
    return out

  return rundir.cached(os.path.join(rep.round_dir(producer, r), layout.LAYERWISE_LMC), compute)


def replicate_distances(replicates, producers, lot) -> dict:
  """{producer: [{'round', 'l2', 'relative', 'pairs'}]}: the mean distance between the final
  networks (copy A) of every two replicates of one producer and round, beside the LMC pair's
  distance (two data orders from one init) that lmc.json records. Replicates start from
  different theta_0 (fold_in(seeds.init, replicate)), so this is the distance between
  independent runs of the recipe; needs 2 replicates."""
  if len(replicates) < 2:
    return {}
  out = {}
  for producer in producers:
    rounds = [0] if producer == "dense" else [r for r in imp.trained_rounds(lot, producer) if r]
    rows = []
    for r in rounds:
      nets = [rep.trained(producer, r)[1].params for rep in replicates]
      pairs = [stability.endpoint_distance(nets[i], nets[j])
               for i in range(len(nets)) for j in range(i + 1, len(nets))]
      rows.append({"round": r, "sparsity": masks_lib.sparsity(replicates[0].mask(producer, r)[0]),
                   "l2": float(np.mean([d["l2"] for d in pairs])),
                   "relative": float(np.mean([d["relative"] for d in pairs])),
                   "pairs": len(pairs)})
    out[producer] = rows
  return out


def mask_statistics(rep, producers, rounds: int, figure_path: str) -> dict:
  """Overlap of every producer's mask with IMP's at each round (and chance level), every two
  producers' Jaccard and Hamming distance at each round, and the initial magnitudes of pruned
  vs kept weights at the last round (histogram figure)."""
  out = {"overlap_with_imp": {}, "pruned_initial_magnitude": {}}
  magnitudes = {}
  for producer in producers:
    last = rep.mask(producer, rounds)[0]
    pruned, kept = stability.pruned_initial_magnitudes(rep.theta0, last)
    magnitudes[producer] = (pruned, kept)
    out["pruned_initial_magnitude"][producer] = {
        "pruned_mean": float(np.mean(pruned)) if pruned.size else None,
        "kept_mean": float(np.mean(kept)) if kept.size else None}
    if producer != "imp" and "imp" in producers:
      out["overlap_with_imp"][producer] = [
          dict(stability.overlap_stats(rep.mask(producer, r)[0], rep.mask("imp", r)[0]),
               round=r) for r in range(1, rounds + 1)]
  # Every two producers' masks at the same round (same sparsity): Jaccard and Hamming.
  out["pairwise"] = [
      dict(stability.overlap_stats(rep.mask(p, r)[0], rep.mask(q, r)[0]), round=r,
           sparsity=masks_lib.sparsity(rep.mask(p, r)[0]), producers=[p, q])
      for i, p in enumerate(producers) for q in producers[i + 1:] for r in range(1, rounds + 1)]
  if rounds > 0 and parallel.is_writer():
    stability.plot_magnitude_histograms(magnitudes, figure_path)
  return out


def analyse(replicates, config, workdir: str) -> dict:
  """All configured analyses on the first `stability.replicates` replicates
  (runners/replicate.Replicate); figures into <workdir>/figures. Returns the JSON-able summary
  stored in results.json."""
  st, lot = config.stability, config.lottery
  figures = os.path.join(workdir, "figures")
  os.makedirs(figures, exist_ok=True)
  if not st.analyses or st.replicates == 0:
    return {}
  rep, probes = replicates[0], config.seeds.probes
  sample = analysis_sample(rep.setup.data, config.seeds.analysis)
  producers = lmc_targets(st, lot)
  detail_producers, detail_rounds = detail_targets(st, lot)
  out = {"analysis_sample": {"seed": int(config.seeds.analysis),
                             "train_examples_per_class": sample.per_class(sample.labels)}}
  if "lmc" in st.analyses:
    lmc = {}
    for p in replicates[:st.replicates]:
      for producer in producers:
        rounds = [0] if producer == "dense" else imp.trained_rounds(lot, producer)
        lmc.setdefault(producer, []).append([lmc_stage(p, st, producer, r, sample)
                                             for r in rounds])
    out["lmc"] = {producer: [summaries.mean_lmc([x[i] for x in reps]) for i in range(len(reps[0]))]
                  for producer, reps in lmc.items()}
    if len(replicates) > 1:
      out["replicate_distance"] = replicate_distances(replicates, producers, lot)
  if "landscape" in st.analyses:
    out["landscape"] = {
        producer: [landscape_stage(rep, st, probes, producer, r,
                                   os.path.join(figures, f"landscape_{producer}_round{r}.png"),
                                   sample)
                   for r in detail_rounds] for producer in detail_producers}
    if st.get("landscape_on_distilled", False):
      out["landscape_distilled"] = {
          producer: [landscape_stage(
              rep, st, probes, producer, r,
              os.path.join(figures, f"landscape_{producer}_round{r}_distilled.png"), sample,
              on_distilled=True) for r in detail_rounds] for producer in detail_producers}
  if "hessian" in st.analyses:
    # The dense network's row first (round 0, once), then every detail producer's rounds.
    out["hessian"] = {"dense": [hessian_stage(rep, st, probes, "dense", 0, sample)]}
    out["hessian"].update({producer: [hessian_stage(rep, st, probes, producer, r, sample)
                                      for r in detail_rounds if r > 0]
                           for producer in detail_producers})
  detail = [("dense", 0)] + [(p, r) for p in detail_producers for r in detail_rounds if r > 0]
  if "sharpness" in st.analyses:  # Every analysed replicate: its spread is the verdict's.
    per_replicate = [[sharpness_stage(p, st, probes, producer, r, sample)
                      for producer, r in detail] for p in replicates[:st.replicates]]
    out["sharpness"] = summaries.sharpness_by_producer(detail, per_replicate)
    if parallel.is_writer():
      stability.plot_spectral_density(
          {f"{producer} {100 * rec['sparsity']:.0f}%": _density_curve(rec["density"])
           for (producer, _), rec in zip(detail, per_replicate[0])},
          os.path.join(figures, "spectral_density.png"))
  if "layerwise_lmc" in st.analyses:
    records = {}
    for producer, r in detail:
      records.setdefault(producer, []).append(layerwise_lmc_stage(rep, st, producer, r, sample))
    out["layerwise_lmc"] = {producer: [summaries.layerwise_summary(rec) for rec in recs]
                            for producer, recs in records.items()}
    if parallel.is_writer():
      for producer, recs in out["layerwise_lmc"].items():
        stability.plot_layerwise_barriers(
            {f"{100 * rec['sparsity']:.0f}%": {layer: 100 * b["test_error_barrier"]
                                                 for layer, b in rec["layers"].items()}
             for rec in recs}, os.path.join(figures, f"layerwise_lmc_{producer}.png"),
            ylabel="test-error barrier (points)")
  if "masks" in st.analyses and lot.producers:
    out["masks"] = mask_statistics(rep, lot.producers, lot.rounds,
                                   os.path.join(figures, "pruned_magnitudes.png"))
  return out
