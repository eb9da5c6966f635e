"""Diagonal of the loss Hessian by Hutchinson's estimator, and its summary table.

diag(H) = E_z[z * (H z)] for z with independent Rademacher (+-1) entries. H z is a
Hessian-vector product, forward-over-reverse: the gradient is linearised once per jitted call
(jax.linearize(jax.grad(f), params)) and applied to each probe of the call, 1.5-2 gradients
per probe. With masks, z is zero on pruned weights, so the estimate is the
diagonal of the Hessian on the kept weights (pruned weights add no variance) and exactly 0 on
pruned weights.
"""

import functools
from typing import Any, Callable, Iterable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from lottery_jax import loss as loss_lib
from lottery_jax import masks as masks_lib
from lottery_jax import pruning
from lottery_jax import tree
from lottery_jax.errors import UserInputError
from lottery_jax.stability import sweep

LossFn = Callable[[Any, Any], jax.Array]


def classification_loss(model, batch_stats=None) -> LossFn:
  """loss_fn(params, batch) -> mean cross-entropy of `model` on batch = {'image', 'label'}.

  BatchNorm models (non-empty batch_stats) are run in training mode, normalising with the
  batch's own statistics (the objective that training minimises; the running statistics are
  not updated), others in evaluation mode. Without BatchNorm the same function comes back for
  the same model, so the jitted Hutchinson call compiles once for all of a run's networks.
  """
  train_mode = bool(jax.tree.leaves(batch_stats)) if batch_stats is not None else False
  if not train_mode:
    return _evaluation_loss(model)

  def loss_fn(params, batch):
    images, labels = _image_label(batch)
    logits, _ = loss_lib.forward(model, params, batch_stats, images, train=True)
    return loss_lib.cross_entropy(logits, labels)

  return loss_fn


@functools.lru_cache(maxsize=32)
def _evaluation_loss(model) -> LossFn:
  def loss_fn(params, batch):
    images, labels = _image_label(batch)
    logits, _ = loss_lib.forward(model, params, None, images, train=False)
    return loss_lib.cross_entropy(logits, labels)

  return loss_fn


def _image_label(batch):
  """(images, labels) of a classification_loss batch, images (B, ...) and int labels (B,); one
  line naming the format otherwise (checked while tracing, so it costs nothing per step)."""
  if not (hasattr(batch, "keys") and {"image", "label"} <= set(batch.keys())):
    got = (f"a dict with keys {sorted(batch.keys())}" if hasattr(batch, "keys")
           else type(batch).__name__)
    raise UserInputError(f"classification_loss reads a batch {{'image': images, 'label': "
                         f"labels}}, got {got}")
  sweep.check_examples(batch["image"], batch["label"])
  return batch["image"], batch["label"]


def hvp(loss_fn: LossFn, params, batch, direction):
  """Hessian of loss_fn(., batch) at params times `direction` (forward-over-reverse)."""
  return jax.jvp(jax.grad(lambda p: loss_fn(p, batch)), (params,), (direction,))[1]


def linearised_hvp(loss_fn: LossFn, params, batch):
  """direction -> Hessian of loss_fn(., batch) at params times direction, with the gradient
  linearised once (traceable): the primal forward and backward passes are shared by every
  direction it is applied to."""
  return jax.linearize(jax.grad(lambda p: loss_fn(p, batch)), params)[1]


def _rademacher_probe(key, params, masks):
  """A Rademacher tree like params drawn from `key`, zero on pruned weights."""
  z = tree.random_rademacher_like(key, params)
  return z if masks is None else masks_lib.apply_masks(z, masks)


@functools.partial(jax.jit, static_argnames=("loss_fn", "probe_batch", "unroll"))
def _add_probes(total, params, batch, masks, key, start, num_probes, *, loss_fn, probe_batch,
                unroll):
  """total + the sum of z * (H z) over probes start .. start + unroll * probe_batch - 1 (those
  below num_probes; the others get weight 0).

  Probe i uses the key fold_in(key, i), so the probes do not depend on the blocking. start and
  num_probes are traced: one compilation per (loss_fn, probe_batch, unroll, shapes), whatever
  num_probes. The gradient is linearised once per call (forward-over-reverse: the primal
  forward and backward passes are shared by all probes of the call); `unroll` blocks of
  `probe_batch` probes are applied one after another in straight-line code, each block through
  vmap (probe_batch 1: no vmap; vmapped probes become grouped convolutions, slow on CPU).
  """
  hvp_fn = linearised_hvp(loss_fn, params, batch)
  for u in range(unroll):
    index_K = start + u * probe_batch + jnp.arange(probe_batch)
    keys_K = jax.vmap(lambda i: jax.random.fold_in(key, i))(index_K)
    weights_K = (index_K < num_probes).astype(jnp.float32)
    if probe_batch == 1:
      z = _rademacher_probe(keys_K[0], params, masks)
      estimates = jax.tree.map(lambda a, b: (a * b)[None], z, hvp_fn(z))
    else:
      z = jax.vmap(lambda k: _rademacher_probe(k, params, masks))(keys_K)
      estimates = jax.tree.map(jnp.multiply, z, jax.vmap(hvp_fn)(z))
    total = _add_weighted(total, weights_K, estimates)
  return total


def _add_weighted(total, weights_K, estimates_K):
  """total + sum_k weights_K[k] * estimates_K[k], leaf by leaf (leaves of estimates_K have a
  leading axis K)."""
  return jax.tree.map(lambda t, e: t + jnp.tensordot(weights_K.astype(e.dtype), e, axes=1),
                      total, estimates_K)


def default_probe_batch() -> int:
  """Probes per vmapped block when none is given: 1 on a CPU, 8 on accelerators."""
  return 1 if jax.default_backend() == "cpu" else 8


SINGLE_PROBE_UNROLL = 4  # Single probes per jitted call when unroll is not given.


def hessian_diagonal(loss_fn: LossFn, params, batches: Iterable[Any], key, num_probes: int,
                     masks=None, probe_batch: int | None = None, unroll: int | None = None):
  """Hutchinson estimate of the diagonal of the Hessian of loss_fn, averaged over batches.

  The probes run as a host loop over one jitted call of unroll x probe_batch probes (called
  ceil(num_probes / (unroll x probe_batch)) times per batch): compile time does not grow with
  num_probes, and with probe_batch 1 every HVP is straight-line code (XLA:CPU runs backward
  convolutions inside loop bodies several times slower; bench/analysis_throughput.py).

  Args:
    loss_fn: (params, batch) -> scalar loss; a module-level function or one closure reused
      across calls (it is a static argument of the jitted call).
    params: where the Hessian is taken.
    batches: a sequence of batches (pytrees, e.g. {'image', 'label'}; equal shapes compile
      once). Batch b uses the probes of key fold_in(key, b).
    key: a jax PRNG key; probe i of batch b is drawn from fold_in(fold_in(key, b), i), so the
      estimate does not depend on probe_batch or unroll, and n probes are the first n of n + 1.
    num_probes: Rademacher probes per batch.
    masks: bool tree like params; probes are zero on pruned weights, where the estimate is
      exactly 0. None: all weights.
    probe_batch: probes per vmapped block; peak memory ~ probe_batch HVPs, i.e. a backward
      pass over probe_batch x batch-size examples. For small dense networks, blocks of
      hundreds are fastest everywhere.
      None: `default_probe_batch()` (1 on a CPU, where vmapped probes become slow grouped
      convolutions; 8 on accelerators).
    unroll: blocks per jitted call, in straight-line code (they share one linearisation of
      the gradient); compile time grows with it. None: SINGLE_PROBE_UNROLL (4) when
      probe_batch is 1 (1.5-1.7 gradients per probe on ConvNet-3 on a CPU against 2.0 for
      1; bench/README.md), else 1.

  Returns:
    A tree like params: the mean over batches of mean_z z * (H z).
  """
  pruning.check_key(key, "hessian_diagonal")
  if num_probes < 1:
    raise UserInputError(f"num_probes must be at least 1, got {num_probes}")
  for name, value in (("probe_batch", probe_batch), ("unroll", unroll)):
    if value is not None and value < 1:
      raise UserInputError(f"{name} must be at least 1 or None, got {value}")
  groups = hessian_diagonal_groups(loss_fn, params, batches, key, num_probes, 1, masks=masks,
                                   probe_batch=probe_batch, unroll=unroll)
  return jax.tree.map(lambda g: g[0], groups.diag_G)


class ProbeGroups(NamedTuple):
  """Hutchinson estimates from disjoint groups of probes.

  Attributes:
    diag_G: a tree like params whose leaves have a leading axis G: group g's estimate of the
      diagonal (the mean of z * (H z) over its probes and over the batches; 0 on pruned
      weights).
    sizes_G: int (G,) probes per batch in each group (they differ by at most one).
  """
  diag_G: Any
  sizes_G: np.ndarray

  def mean(self):
    """The estimate from all probes (the size-weighted mean of the groups)."""
    w = self.sizes_G / self.sizes_G.sum()
    return jax.tree.map(lambda g: jnp.tensordot(jnp.asarray(w, g.dtype), g, axes=1),
                        self.diag_G)


def hessian_diagonal_groups(loss_fn: LossFn, params, batches: Iterable[Any], key,
                            num_probes: int, num_groups: int, masks=None,
                            probe_batch: int | None = None,
                            unroll: int | None = None) -> ProbeGroups:
  """`hessian_diagonal`, kept apart for num_groups disjoint groups of its probes.

  Group g holds probes [g * n / G, (g + 1) * n / G) of every batch (n = num_probes; G is
  capped at n), so the groups' size-weighted mean is the estimate from all n probes, and
  groups are independent given the batches: their spread measures the estimator's noise
  (`summary_with_errors`). Arguments as `hessian_diagonal`.
  """
  pruning.check_key(key, "hessian_diagonal_groups")
  if num_probes < 1:
    raise UserInputError(f"num_probes must be at least 1, got {num_probes}")
  for name, value in (("probe_batch", probe_batch), ("unroll", unroll),
                      ("num_groups", num_groups)):
    if value is not None and value < 1:
      raise UserInputError(f"{name} must be at least 1 or None, got {value}")
  num_probes, num_groups = int(num_probes), min(int(num_groups), int(num_probes))
  bounds = [round(g * num_probes / num_groups) for g in range(num_groups + 1)]
  probe_batch = min(int(probe_batch or default_probe_batch()), num_probes)
  unroll = unroll or (SINGLE_PROBE_UNROLL if probe_batch == 1 else 1)
  unroll = min(int(unroll), -(-num_probes // probe_batch))
  per_call = probe_batch * unroll
  params, masks = jax.device_put((params, masks))
  zeros = jax.tree.map(jnp.zeros_like, params)
  totals, count = [zeros] * num_groups, 0
  for b, batch in enumerate(batches):
    batch, batch_key = jax.device_put(batch), jax.random.fold_in(key, b)
    for g in range(num_groups):
      sums = zeros
      # The call's `num_probes` argument is the group's end: probes past it get weight 0.
      for start in range(bounds[g], bounds[g + 1], per_call):
        sums = _add_probes(sums, params, batch, masks, batch_key, start, bounds[g + 1],
                           loss_fn=loss_fn, probe_batch=probe_batch, unroll=unroll)
      totals[g] = tree.add(totals[g], sums)
    count += 1
  if count == 0:
    raise UserInputError("hessian_diagonal needs at least one batch")
  sizes = np.diff(bounds)
  diags = [tree.scale(t, 1.0 / (count * n)) for t, n in zip(totals, sizes)]
  if masks is not None:
    diags = [masks_lib.apply_masks(d, masks) for d in diags]
  return ProbeGroups(jax.tree.map(lambda *g: jnp.stack(g), *diags), sizes)


def kept_values(diag_tree, masks=None, lead_axes: int = 0) -> np.ndarray:
  """float64 (K,): the diagonal over the kept weights of prunable layers, leaves in tree
  order. With `masks`, the leaves the masks mark prunable (layers left dense by
  `lottery.dense_layers` are not), pruned weights left out; without, conv and dense kernels.
  Biases and normalisation parameters are never counted. Leaves may carry `lead_axes`
  leading axes (e.g. 1 for ProbeGroups.diag_G): then (..., K)."""
  if masks is not None:
    masks_lib.check_bool(masks)
  values = []
  mask_leaves = (jax.tree.leaves(masks) if masks is not None
                 else [None] * len(jax.tree.leaves(diag_tree)))
  for (path, d), m in zip(jax.tree_util.tree_leaves_with_path(diag_tree), mask_leaves):
    d = np.asarray(d, np.float64)
    if m is not None:
      if masks_lib.prunable_leaf(m):
        m = np.asarray(m, bool)
        values.append(d[..., m])
    elif masks_lib.is_prunable(path, d[(0,) * lead_axes]):
      values.append(d.reshape(d.shape[:lead_axes] + (-1,)))
  if not values:
    raise UserInputError("no kept prunable weight to summarise")
  return np.concatenate(values, axis=-1)


def _statistics(flat: np.ndarray) -> dict[str, float]:
  return {"min": float(flat.min()), "max": float(flat.max()), "mean": float(flat.mean()),
          "std": float(flat.std()), "mean_abs": float(np.abs(flat).mean())}


def summary(diag_tree, masks=None) -> dict[str, float]:
  """Statistics of a Hessian diagonal over the kept weights of prunable layers
  (`kept_values`). Returns {'min', 'max', 'mean', 'std', 'mean_abs', 'count'}."""
  flat = kept_values(diag_tree, masks)
  if flat.size == 0:
    raise UserInputError("no kept prunable weight to summarise")
  return dict(_statistics(flat), count=int(flat.size))


def summary_with_errors(groups: ProbeGroups, masks=None) -> dict:
  """`summary` of the all-probe estimate, with how far its probe noise reaches.

  - `se`: the jackknife standard error of every statistic over the probe groups (leave one
    group out; rough for min and max, which are extremes);
  - `reliability`: the Pearson correlation, over the kept weights, between the estimates
    from the first and the second half of the groups (independent halves of the probes;
    1 = no probe noise); `reliability_full`: Spearman-Brown's 2r / (1 + r), the expected
    correlation between two all-probe estimates;
  - `std_signal`: sqrt of the covariance of the two halves over the weights, the spread of
    the diagonal itself with the probe noise (independent between halves) taken out.
  None where fewer than 2 groups exist (one probe).
  """
  values_GK = kept_values(groups.diag_G, masks, lead_axes=1)
  sizes = groups.sizes_G.astype(np.float64)
  n, num_groups = sizes.sum(), len(sizes)
  full = sizes @ values_GK / n
  out = dict(_statistics(full), count=int(full.size), num_groups=num_groups,
             se=None, reliability=None, reliability_full=None, std_signal=None)
  if num_groups < 2:
    return out
  loo = [(n * full - sizes[g] * values_GK[g]) / (n - sizes[g]) for g in range(num_groups)]
  stats_G = [_statistics(v) for v in loo]
  out["se"] = {k: float(np.sqrt((num_groups - 1) / num_groups
                                * np.sum((np.array([s[k] for s in stats_G])
                                          - np.mean([s[k] for s in stats_G])) ** 2)))
               for k in stats_G[0]}
  half = num_groups // 2
  a = sizes[:half] @ values_GK[:half] / sizes[:half].sum()
  b = sizes[half:] @ values_GK[half:] / sizes[half:].sum()
  r = float(np.corrcoef(a, b)[0, 1]) if a.std() > 0 and b.std() > 0 else 0.0
  out["reliability"] = r
  out["reliability_full"] = float(2 * r / (1 + r)) if r > -1 else None
  out["std_signal"] = float(np.sqrt(max(np.mean((a - a.mean()) * (b - b.mean())), 0.0)))
  return out


def markdown_table(rows: dict[str, dict[str, float]]) -> str:
  """A markdown table with one row per name: min, max, mean +- std, mean |.| (as the paper's
  Hessian table); `rows` maps a name to a `summary`."""
  lines = ["| | min | max | mean ± std | mean abs |", "|---|---:|---:|---:|---:|"]
  for name, s in rows.items():
    lines.append(f"| {name} | {s['min']:.3e} | {s['max']:.3e} | "
                 f"{s['mean']:.3e} ± {s['std']:.3e} | {s['mean_abs']:.3e} |")
  return "\n".join(lines) + "\n"


def reliability_table(rows: dict[str, dict]) -> str:
  """A markdown table with one row per name of `summary_with_errors` records: split-half and
  all-probe reliability, std ± its standard error, the probe-noise-free std, mean |.| ± its
  standard error, and the examples per class the estimate used."""
  se = lambda r, k: (r.get("se") or {}).get(k)
  with_se = lambda r, k: f"{r[k]:.3e}" + (f" ± {se(r, k):.1e}" if se(r, k) is not None else "")
  num = lambda x: "n/a" if x is None else f"{x:.3f}"
  lines = ["| | reliability (split-half r) | reliability (all probes) | std ± SE | "
           "std, probe noise removed | mean abs ± SE | examples per class |",
           "|---|---:|---:|---:|---:|---:|---|"]
  for name, r in rows.items():
    lines.append(f"| {name} | {num(r.get('reliability'))} | {num(r.get('reliability_full'))} "
                 f"| {with_se(r, 'std')} | "
                 + ("n/a" if r.get("std_signal") is None else f"{r['std_signal']:.3e}")
                 + f" | {with_se(r, 'mean_abs')} | {r.get('examples_per_class', 'not recorded')} |")
  return "\n".join(lines) + "\n"
