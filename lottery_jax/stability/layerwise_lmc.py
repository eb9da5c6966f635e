"""Layerwise linear mode connectivity: the barrier when only one layer moves from A to B.

theta_L(alpha) holds network A everywhere except layer L, whose parameters are
a_L + alpha (b_L - a_L). The barrier of that path (as `lmc.barriers` measures it) says how much
of the whole-network barrier one layer carries on its own. A layer is a module holding a
prunable kernel (its kernel and bias) together with the normalisation module paired with it
(`layer_modules`); any module paths can be grouped instead (e.g. a whole residual block).

Every (layer, alpha) point is one point of one `sweep`: all layers and alphas are evaluated
inside one jitted call per data chunk (`jax.lax.map` over points), as `lmc.path_metrics` does
for the whole network.
"""

import logging
import re
from typing import Iterable, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from lottery_jax import masks as masks_lib
from lottery_jax.errors import UserInputError
from lottery_jax.stability import lmc
from lottery_jax.stability import sweep

log = logging.getLogger(__name__)

_INDEXED = re.compile(r"^(?P<kind>.+)_(?P<index>\d+)$")  # Flax auto-names: 'Conv_0'.


def _module_of(name: str) -> str:
  return name.rsplit("/", 1)[0] if "/" in name else ""


def _leaves_by_module(params) -> dict[str, dict[str, tuple]]:
  """{module path: {leaf name ('kernel', 'scale', ...): shape}} in tree order."""
  modules: dict[str, dict[str, tuple]] = {}
  for path, leaf in jax.tree_util.tree_leaves_with_path(params):
    name = masks_lib.path_name(path)
    modules.setdefault(_module_of(name), {})[name.rsplit("/", 1)[-1]] = np.shape(leaf)
  return modules


def _index(module: str) -> tuple[str, str, str] | None:
  """(parent path, kind, index) of an auto-named module ('Block_0/Conv_1' -> ('Block_0',
  'Conv', '1')); None for other names."""
  match = _INDEXED.match(module.rsplit("/", 1)[-1])
  return None if match is None else (_module_of(module), match["kind"], match["index"])


def layer_modules(params) -> dict[str, tuple[str, ...]]:
  """The default layers: {name: module paths interpolated together}, in tree order.

  One layer per module holding a prunable kernel (`masks.is_prunable`), named by its path
  ('Conv_0', 'BasicBlock_1/Conv_0', 'Dense_0'). A normalisation module (its kind ends in
  'Norm': 'BatchNorm_1', 'GroupNorm_0', ...) joins the kernel module of its parent that has
  its index and as many output features as it has features ('Conv_1' for 'BatchNorm_1',
  the flax auto-naming order of conv -> norm pairs). One with no such partner is left at A
  (a warning names it); one with two is refused: pass `layers` explicitly then.
  """
  modules = _leaves_by_module(params)
  kernels = [_module_of(masks_lib.path_name(path))
             for path, leaf in jax.tree_util.tree_leaves_with_path(params)
             if masks_lib.is_prunable(path, leaf)]
  layers = {k: [k] for k in kernels}
  unpaired = []
  for module, leaves in modules.items():
    at = _index(module)
    if at is None or not at[1].endswith("Norm") or "kernel" in leaves:
      continue
    parent, _, index = at
    features = next(iter(leaves.values()))[-1:]
    partners = [k for k in kernels
                if _index(k) is not None and (_index(k)[0], _index(k)[2]) == (parent, index)
                and modules[k]["kernel"][-1:] == features]
    if len(partners) > 1:
      raise UserInputError(f"normalisation module {module} could belong to "
                           f"{' or '.join(partners)}; pass layers={{name: module paths}}")
    if partners:
      layers[partners[0]].append(module)
    else:
      unpaired.append(module)
  if unpaired:
    log.warning("layerwise LMC: no layer owns %s; these stay at A on every path",
                ", ".join(unpaired))
  if not layers:
    raise UserInputError("the params hold no prunable kernel, so no layer to interpolate")
  return {name: tuple(group) for name, group in layers.items()}


def _resolve_layers(params, layers) -> dict[str, tuple[str, ...]]:
  """`layers` as {name: module paths}: None -> layer_modules(params); a sequence of names ->
  those default layers; a mapping -> as given, every path checked against params."""
  if layers is None:
    return layer_modules(params)
  if not isinstance(layers, Mapping):
    defaults = layer_modules(params)
    names = [layers] if isinstance(layers, str) else list(layers)
    for name in names:
      if name not in defaults:
        raise UserInputError(f"unknown layer {name!r}; valid choices: "
                             + ", ".join(repr(n) for n in defaults))
    return {name: defaults[name] for name in names}
  resolved = {name: ((group,) if isinstance(group, str) else tuple(group))
              for name, group in layers.items()}
  leaf_names = [masks_lib.path_name(p) for p, _ in jax.tree_util.tree_leaves_with_path(params)]
  for name, group in resolved.items():
    for module in group:
      if not any(_under(leaf, module) for leaf in leaf_names):
        raise UserInputError(f"layer {name!r}: no parameter under module {module!r}; modules: "
                             + ", ".join(sorted(_leaves_by_module(params))))
  if not resolved:
    raise UserInputError("no layer to interpolate (layers is empty)")
  return resolved


def _under(leaf_name: str, module: str) -> bool:
  return leaf_name == module or leaf_name.startswith(module + "/")


def layer_ids(tree, layers: Mapping[str, Iterable[str]]):
  """A tree like `tree` (params or batch_stats) of float32 0-d arrays: the position in
  `layers` of the layer owning each leaf, -1 for leaves of no layer. A leaf claimed by two
  layers is refused."""
  groups = list(layers.values())

  def owner(path, _):
    name = masks_lib.path_name(path)
    owners = [i for i, group in enumerate(groups) if any(_under(name, m) for m in group)]
    if len(owners) > 1:
      names = list(layers)
      raise UserInputError(f"{name} belongs to layers {names[owners[0]]!r} and "
                           f"{names[owners[1]]!r}; each parameter may belong to one layer")
    return jnp.asarray(owners[0] if owners else -1, jnp.float32)

  return jax.tree_util.tree_map_with_path(owner, tree)


def _lerp(a, b, alpha):
  """a + alpha (b - a), and b at alpha = 1: exactly a at 0 and wherever a == b, exactly b at 1
  (tree.lerp's (1 - alpha) a + alpha b is exact at the ends but not where a == b)."""
  alpha = alpha.astype(a.dtype)
  return jnp.where(alpha == 1, b, a + alpha * (b - a))


def _move_layer(tree_a, tree_b, ids, layer, alpha):
  """tree_a with the leaves whose id is `layer` moved a fraction alpha towards tree_b."""
  return jax.tree.map(lambda a, b, i: jnp.where(i == layer, _lerp(a, b, alpha), a),
                      tree_a, tree_b, ids)


def layer_point(base, point):
  """Sweep point function: base = (params_a, params_b, layer_ids), point = float32 (2,)
  (layer position, alpha)."""
  params_a, params_b, ids = base
  return _move_layer(params_a, params_b, ids, point[0], point[1])


def replace_layer(params_a, params_b, modules: Iterable[str]):
  """params_a with every leaf under the module paths `modules` taken from params_b (the
  layer's alpha = 1 endpoint)."""
  modules = [modules] if isinstance(modules, str) else list(modules)
  lmc.check_same_architecture(params_a, params_b)
  return jax.tree_util.tree_map_with_path(
      lambda path, a, b: b if any(_under(masks_lib.path_name(path), m) for m in modules) else a,
      params_a, params_b)


def _check_alphas(alphas_A) -> np.ndarray:
  alphas = np.asarray(alphas_A, np.float32)
  if alphas.ndim != 1 or not np.all(np.isfinite(alphas)) or not (
      np.any(alphas == 0.0) and np.any(alphas == 1.0)):
    raise UserInputError("alphas must be a 1-D array of finite values holding exactly 0 and 1 "
                         f"(the barrier needs both endpoints), got {np.asarray(alphas_A)!r}")
  return alphas


def layerwise_path_metrics(model, params_a, params_b, alphas_A, images, labels, *, layers=None,
                           batch_stats_a=None, batch_stats_b=None, chunk_size: int = 500,
                           alpha_batch: int | None = None, bn_images=None, mesh=None,
                           memory_budget_gb: float | None = None) -> dict:
  """Loss and accuracy along every layer's path, over all examples.

  Args:
    model, params_a, params_b, images, labels, chunk_size, alpha_batch, mesh,
      memory_budget_gb: as `lmc.path_metrics` (alpha_batch counts points: one layer at one
      alpha each).
    alphas_A: float (A,) interpolation coefficients, holding exactly 0 and 1.
    layers: None (every layer of `layer_modules`), a sequence of its names, or
      {name: module paths} (every parameter under those modules moves together).
    batch_stats_a, batch_stats_b: BatchNorm running statistics of each endpoint. With
      bn_images they are recomputed at every point (see `sweep`); without, the moving layer's
      statistics are interpolated like its parameters and the rest are A's (cheap, exact at
      the endpoints, overstates barriers; a warning is logged).
    bn_images: float32 (M, H, W, C) training images for BatchNorm models, or None.

  Returns:
    {'layers_L': [layer names], 'modules_L': [their module paths], 'alphas_A': float32 (A,),
    'loss_LxA': mean cross-entropy, 'accuracy_LxA'}; row l is layer l's path.
  """
  lmc.check_same_architecture(params_a, params_b)
  sweep.check_evaluation_set(model, params_a, batch_stats_a, images, labels)
  alphas = _check_alphas(alphas_A)
  groups = _resolve_layers(params_a, layers)
  ids = layer_ids(params_a, groups)
  num_layers = len(groups)
  points_P = jnp.asarray(np.stack(np.broadcast_arrays(
      np.arange(num_layers, dtype=np.float32)[:, None], alphas[None, :]), -1).reshape(-1, 2))
  base = (params_a, params_b, ids)
  stats_P = None
  if sweep.has_batch_stats(batch_stats_a):
    if bn_images is not None:
      stats_P = sweep.recompute_stats(model, layer_point, base, points_P, batch_stats_a,
                                      bn_images, chunk_size=chunk_size, point_batch=alpha_batch,
                                      mesh=mesh, memory_budget_gb=memory_budget_gb)
    else:
      log.warning("layerwise LMC of a BatchNorm model without bn_images: interpolating the "
                  "moving layer's running statistics, which overstates barriers; pass "
                  "bn_images to recompute them")
      stats_b = batch_stats_a if batch_stats_b is None else batch_stats_b
      lmc.check_same_architecture(batch_stats_a, stats_b)
      stats_ids = layer_ids(batch_stats_a, groups)
      stats_P = jax.vmap(lambda p: _move_layer(batch_stats_a, stats_b, stats_ids, p[0], p[1]))(
          points_P)
  metrics = sweep.evaluate_points(model, layer_point, base, points_P, images, labels,
                                  stats_P=stats_P, chunk_size=chunk_size,
                                  point_batch=alpha_batch, mesh=mesh,
                                  memory_budget_gb=memory_budget_gb)
  shape = (num_layers, len(alphas))
  return {"layers_L": list(groups), "modules_L": list(groups.values()), "alphas_A": alphas,
          "loss_LxA": metrics["loss_P"].reshape(shape),
          "accuracy_LxA": metrics["accuracy_P"].reshape(shape)}


def layer_barriers(metrics: dict) -> dict[str, dict[str, dict[str, float]]]:
  """{layer: {'loss': barriers, 'error': barriers}} (`lmc.path_barriers` of each layer's
  path) of `layerwise_path_metrics`."""
  return {name: lmc.path_barriers({"alphas_A": metrics["alphas_A"],
                                   "loss_A": metrics["loss_LxA"][i],
                                   "accuracy_A": metrics["accuracy_LxA"][i]})
          for i, name in enumerate(metrics["layers_L"])}


def markdown_table(barriers: dict[str, dict[str, dict[str, float]]]) -> str:
  """A markdown table of `layer_barriers`: one row per layer, the max and midpoint barriers
  of loss and error."""
  lines = ["| layer | loss max barrier | loss midpoint barrier | error max barrier | "
           "error midpoint barrier |", "|---|---:|---:|---:|---:|"]
  for name, b in barriers.items():
    lines.append(f"| {name} | {b['loss']['max_barrier']:.4f} | "
                 f"{b['loss']['midpoint_barrier']:.4f} | {b['error']['max_barrier']:.4f} | "
                 f"{b['error']['midpoint_barrier']:.4f} |")
  return "\n".join(lines) + "\n"
