"""The library used in one's own code: each misuse gets one clear line, or works (NNX paths,
a layer name given as a string, a plain apply function, masks replaced mid-training); the
core imports without the experiments' dependencies."""

import pathlib
import subprocess
import sys

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from lottery_jax import masks, pruning, stability
from lottery_jax.errors import UserInputError

ROOT = pathlib.Path(__file__).resolve().parents[1]


def mlp_params():
  return {"Dense_0": {"kernel": jnp.array([[1.0, -2.0, 3.0], [-4.0, 5.0, -6.0]]),
                      "bias": jnp.zeros(3)},
          "Dense_1": {"kernel": jnp.array([[0.5], [-0.25], [2.0]]), "bias": jnp.zeros(1)}}


def test_nnx_state_paths_are_prunable_and_named_without_value():
  from flax import nnx
  model = nnx.Linear(2, 3, rngs=nnx.Rngs(0))
  state = nnx.state(model, nnx.Param)
  m = masks.init_masks(state)
  assert masks.count(m) == (6, 6)  # The 2x3 kernel; the bias stays dense.
  m = pruning.prune(state, m, 0.5)
  assert masks.count(m) == (3, 6) and masks.sparsity(m) == 0.5
  assert masks.layerwise_sparsity(m) == {"kernel": 0.5}


def test_prune_without_prunable_leaves_is_refused():
  params = {"w": jnp.ones((4, 4))}  # Not named 'kernel': nothing is prunable by default.
  with pytest.raises(UserInputError, match="no prunable leaf"):
    pruning.prune(params, masks.init_masks(params), 0.5)
  m = masks.init_masks(params, lambda path, leaf: True)
  assert masks.count(pruning.prune(params, m, 0.5)) == (8, 16)


def test_apply_masks_refuses_a_mask_that_would_broadcast():
  params = {"kernel": jnp.ones((8, 3))}
  with pytest.raises(UserInputError, match=r"mask kernel has shape \(1, 3\), param has \(8, 3\)"):
    masks.apply_masks(params, {"kernel": jnp.array([[True, False, True]])})


def test_jaccard_refuses_masks_of_different_structure_or_shape():
  a = masks.init_masks(mlp_params())
  with pytest.raises(UserInputError, match="jaccard of masks of two different trees"):
    masks.jaccard(a, {"Dense_0": a["Dense_0"]})
  b = dict(a, Dense_1={"kernel": jnp.ones((1, 3), bool), "bias": a["Dense_1"]["bias"]})
  with pytest.raises(UserInputError, match=r"Dense_1/kernel has shape \(3, 1\) .* \(1, 3\)"):
    masks.jaccard(a, b)


def test_dense_layers_predicate_takes_a_single_name_as_a_string():
  params = mlp_params()
  m = masks.init_masks(params, masks.dense_layers_predicate(params, "Dense_1"))
  assert masks.count(m) == (6, 6)  # Only Dense_0's 2x3 kernel is prunable.
  with pytest.raises(UserInputError, match="unknown layer 'Dense_7'.*'Dense_0', 'Dense_1'"):
    masks.dense_layers_predicate(params, "Dense_7")


def test_traced_fraction_names_static_argnames():
  params = mlp_params()
  m = masks.init_masks(params)
  with pytest.raises(UserInputError, match="static_argnames=pruning.STATIC_ARGNAMES"):
    jax.jit(pruning.prune)(params, m, 0.5)
  pruned = jax.jit(pruning.prune, static_argnames=pruning.STATIC_ARGNAMES)(params, m, 0.5)
  assert masks.count(pruned) == (4, 9)  # round(4.5) = 5 of the 9 weights go.


def test_int_key_is_refused_in_one_line_and_legacy_keys_work():
  params = mlp_params()
  m = masks.init_masks(params)
  with pytest.raises(UserInputError,
                     match=r"random pruning needs a PRNG key such as jax.random.key\(0\), got 0"):
    pruning.prune(params, m, 0.5, method="random", key=0)
  with pytest.raises(UserInputError, match="needs a PRNG key"):
    pruning.prune_random_to_match(m, m, 3)
  new = pruning.prune(params, m, 0.5, method="random", key=jax.random.PRNGKey(0))
  assert masks.count(new) == (4, 9)


class NoTrainFlag(nn.Module):
  @nn.compact
  def __call__(self, x):
    return nn.Dense(2)(x.reshape(len(x), -1))


def test_stability_model_contract_module_without_train_is_refused_apply_fn_works():
  images = np.arange(12, dtype=np.float32).reshape(3, 2, 2, 1) / 12.0
  labels = np.array([0, 1, 1], np.int32)
  model = NoTrainFlag()
  params_a = model.init(jax.random.key(0), images)["params"]
  params_b = model.init(jax.random.key(1), images)["params"]
  with pytest.raises(UserInputError, match="NoTrainFlag.__call__ takes no `train` argument"):
    stability.path_metrics(model, params_a, params_b, [0.0, 1.0], images, labels)
  apply_fn = lambda p, x: model.apply({"params": p}, x)
  got = stability.path_metrics(apply_fn, params_a, params_b, [0.0, 0.5, 1.0], images, labels)
  mid = jax.tree.map(lambda a, b: 0.5 * a + 0.5 * b, params_a, params_b)
  for i, p in enumerate([params_a, mid, params_b]):
    logits = apply_fn(p, images)
    want = optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
    np.testing.assert_allclose(got["loss_A"][i], want, rtol=1e-5)
    assert got["accuracy_A"][i] == np.mean(np.argmax(logits, -1) == labels)
  with pytest.raises(UserInputError, match="model must be a flax linen Module"):
    stability.path_metrics("convnet", params_a, params_b, [0.0, 1.0], images, labels)


def test_hessian_batch_that_is_not_an_image_label_dict_is_refused():
  images = np.arange(12, dtype=np.float32).reshape(3, 2, 2, 1) / 12.0
  labels = np.array([0, 1, 1], np.int32)
  apply_fn = lambda p, x: NoTrainFlag().apply({"params": p}, x)
  params = NoTrainFlag().init(jax.random.key(0), images)["params"]
  loss_fn = stability.classification_loss(apply_fn)
  with pytest.raises(UserInputError, match=r"reads a batch \{'image'.*got tuple"):
    stability.hessian_diagonal(loss_fn, params, [(images, labels)], jax.random.key(1), 2)
  with pytest.raises(UserInputError, match=r"got a dict with keys \['x', 'y'\]"):
    stability.hessian_diagonal(loss_fn, params, [{"x": images, "y": labels}],
                               jax.random.key(1), 2)
  diag = stability.hessian_diagonal(loss_fn, params, [{"image": images, "label": labels}],
                                    jax.random.key(1), 2)
  assert jax.tree.structure(diag) == jax.tree.structure(params)


def test_replace_masks_keeps_adam_moments_and_masks_the_next_updates():
  params = {"kernel": jnp.array([[1.0, 2.0], [3.0, 4.0]])}
  m = masks.init_masks(params)
  tx = optax.chain(optax.clip_by_global_norm(10.0), masks.masked_optimizer(optax.adam(0.1), m))
  state = tx.init(params)
  grads = {"kernel": jnp.array([[1.0, -1.0], [2.0, -2.0]])}
  _, state = tx.update(grads, state, params)
  mu_before = state[1].inner_state[0].mu["kernel"]
  new_m = {"kernel": jnp.array([[True, False], [True, True]])}
  state = masks.replace_masks(state, new_m)
  np.testing.assert_array_equal(state[1].masks["kernel"], new_m["kernel"])
  np.testing.assert_array_equal(state[1].inner_state[0].mu["kernel"], mu_before)
  assert int(state[1].inner_state[0].count) == 1  # Adam's step count is kept.
  updates, _ = tx.update(grads, state, params)
  assert float(updates["kernel"][0, 1]) == 0.0 and float(updates["kernel"][0, 0]) != 0.0
  with pytest.raises(UserInputError, match="holds no MaskedState"):
    masks.replace_masks(optax.adam(0.1).init(params), new_m)
  with pytest.raises(UserInputError, match=r"replace_masks: .*shape \(1, 2\)"):
    masks.replace_masks(state, {"kernel": jnp.ones((1, 2), bool)})


def test_core_imports_and_runs_without_the_experiments_dependencies():
  """What `pip install .` without extras has: imports of the extras' packages fail (absl and
  orbax stay: optax and flax themselves depend on them)."""
  code = """
import importlib.abc, sys
EXTRAS = {'tensorflow_datasets', 'tensorflow', 'PIL', 'sklearn', 'matplotlib', 'ml_collections',
          'tqdm', 'pyarrow', 'tensorboardX', 'clu'}
class Block(importlib.abc.MetaPathFinder):
  def find_spec(self, name, path=None, target=None):
    if name.split('.')[0] in EXTRAS:
      raise ImportError(f'blocked {name}')
sys.meta_path.insert(0, Block())
import jax, jax.numpy as jnp
from lottery_jax import masks, pruning, stability
params = {'Dense_0': {'kernel': jnp.array([[1.0, -2.0], [3.0, 0.5]]), 'bias': jnp.zeros(2)}}
apply_fn = lambda p, x: x.reshape(len(x), -1) @ p['Dense_0']['kernel']
m = pruning.prune(params, masks.init_masks(params), 0.5, method='snip', apply_fn=apply_fn,
                  batch=(jnp.ones((2, 1, 2, 1)), jnp.array([0, 1])))
path = stability.path_metrics(apply_fn, params, masks.apply_masks(params, m), [0.0, 1.0],
                              jnp.ones((2, 1, 2, 1)), jnp.array([0, 1]))
print(masks.count(m), path['loss_A'].shape)
"""
  out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
  assert out.returncode == 0, out.stderr[-2000:]
  assert out.stdout.strip() == "(2, 4) (2,)"


def test_core_dependencies_are_only_jax_flax_optax_numpy_chex():
  import tomllib
  project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
  names = {d.split(">")[0].split("=")[0].split("[")[0] for d in project["dependencies"]}
  assert names == {"jax", "flax", "optax", "numpy", "chex"}
  assert "lottery_jax[experiments]" in project["optional-dependencies"]["test"]


def tiny_pair():
  """(apply_fn with 2 logits, params_a, params_b, images (3, 2, 2, 1), labels (3,))."""
  images = np.arange(12, dtype=np.float32).reshape(3, 2, 2, 1) / 12.0
  labels = np.array([0, 1, 1], np.int32)
  apply_fn = lambda p, x: NoTrainFlag().apply({"params": p}, x)
  params_a = NoTrainFlag().init(jax.random.key(0), images)["params"]
  params_b = NoTrainFlag().init(jax.random.key(1), images)["params"]
  return apply_fn, params_a, params_b, images, labels


def test_path_metrics_refuses_images_and_labels_of_different_lengths():
  apply_fn, a, b, images, labels = tiny_pair()
  for x, y in ((images, labels[:2]), (images[:2], labels)):
    with pytest.raises(UserInputError, match=r"images \(\d, 2, 2, 1\) and labels \(\d,\) must "
                                             "have the same leading dimension"):
      stability.path_metrics(apply_fn, a, b, [0.0, 1.0], x, y)


@pytest.mark.parametrize("bad", [2, -1])
def test_path_metrics_refuses_labels_outside_the_models_classes(bad):
  apply_fn, a, b, images, labels = tiny_pair()
  labels = labels.copy()
  labels[1] = bad
  with pytest.raises(UserInputError, match=r"class indices in \[0, 2\) for a model with 2 "
                                           "logits, got labels from"):
    stability.path_metrics(apply_fn, a, b, [0.0, 1.0], images, labels)


def test_path_metrics_refuses_one_hot_labels():
  apply_fn, a, b, images, labels = tiny_pair()
  one_hot = np.eye(2, dtype=np.float32)[labels]
  with pytest.raises(UserInputError, match=r"integer class labels of shape \(N,\), got "
                                           r"float32 \(3, 2\) \(one-hot\?"):
    stability.path_metrics(apply_fn, a, b, [0.0, 1.0], images, one_hot)


def test_path_metrics_refuses_params_b_of_another_network():
  apply_fn, a, b, images, labels = tiny_pair()
  with pytest.raises(UserInputError, match="only params_a has: Dense_0/bias; only params_b "
                                           "has: none"):
    stability.path_metrics(apply_fn, a, {"Dense_0": {"kernel": b["Dense_0"]["kernel"]}},
                           [0.0, 1.0], images, labels)
  wide = {"Dense_0": {"kernel": jnp.ones((4, 3)), "bias": jnp.ones(3)}}
  with pytest.raises(UserInputError, match=r"params_b Dense_0/bias has shape \(3,\), params_a "
                                           r"has \(2,\)"):
    stability.path_metrics(apply_fn, a, wide, [0.0, 1.0], images, labels)
  with pytest.raises(UserInputError, match="one tree structure"):
    stability.endpoint_distance(a, {"Dense_0": {"kernel": b["Dense_0"]["kernel"]}})


def test_grid_losses_and_classification_loss_share_the_examples_check():
  apply_fn, a, b, images, labels = tiny_pair()
  zero = jax.tree.map(jnp.zeros_like, a)
  with pytest.raises(UserInputError, match="must have the same leading dimension"):
    stability.grid_losses(apply_fn, a, zero, zero, [0.0], [0.0], images, labels[:2])
  with pytest.raises(UserInputError, match=r"class indices in \[0, 2\)"):
    stability.grid_losses(apply_fn, a, zero, zero, [0.0], [0.0], images, labels + 1)
  loss_fn = stability.classification_loss(apply_fn)
  one_hot = np.eye(2, dtype=np.int32)[labels]
  with pytest.raises(UserInputError, match=r"integer class labels of shape \(N,\)"):
    stability.hessian_diagonal(loss_fn, a, [{"image": images, "label": one_hot}],
                               jax.random.key(1), 2)


def test_hessian_diagonal_and_plane_directions_refuse_an_int_key():
  apply_fn, a, b, images, labels = tiny_pair()
  loss_fn = stability.classification_loss(apply_fn)
  batches = [{"image": images, "label": labels}]
  with pytest.raises(UserInputError, match=r"hessian_diagonal needs a PRNG key such as "
                                           r"jax.random.key\(0\), got 0"):
    stability.hessian_diagonal(loss_fn, a, batches, 0, 2)
  with pytest.raises(UserInputError, match="hessian_diagonal_groups needs a PRNG key"):
    stability.hessian_diagonal_groups(loss_fn, a, batches, 0, 2, 2)
  with pytest.raises(UserInputError, match="plane_directions needs a PRNG key"):
    stability.plane_directions(a, b, None, 0)


def test_snip_takes_the_stability_batch_dict_and_names_the_forms_otherwise():
  apply_fn, params, _, images, labels = tiny_pair()
  m = masks.init_masks(params)
  prune = lambda batch: pruning.prune(params, m, 0.5, method="snip", apply_fn=apply_fn,
                                      batch=batch)
  from_tuple = prune((images, labels))
  from_dict = prune({"image": images, "label": labels})
  assert jax.tree.all(jax.tree.map(lambda x, y: bool(jnp.array_equal(x, y)), from_tuple,
                                   from_dict))
  assert masks.count(from_dict) == (4, 8)
  forms = r"a pruning batch is \(images, labels\) or \{'image': images, 'label': labels\}, got "
  with pytest.raises(UserInputError, match=forms + r"a dict with keys \['x', 'y'\]"):
    prune({"x": images, "y": labels})
  with pytest.raises(UserInputError, match=forms + "a tuple of length 3"):
    prune((images, labels, labels))
  with pytest.raises(UserInputError, match=forms + "ndarray"):
    pruning.scores(params, "snip", apply_fn=apply_fn, batch=images)


def test_float_masks_are_refused_wherever_masks_are_consumed():
  params = mlp_params()
  half = jax.tree.map(lambda m: jnp.where(m, 0.5, 0.0), masks.init_masks(params))
  refused = r"mask Dense_0/bias has dtype float32, not bool; mask leaves are bool"
  with pytest.raises(UserInputError, match=refused):
    masks.apply_masks(params, half)
  with pytest.raises(UserInputError, match=refused):
    masks.masked_optimizer(optax.sgd(0.1), half)
  with pytest.raises(UserInputError, match=refused):
    masks.count(half)
  with pytest.raises(UserInputError, match=refused):
    masks.jaccard(half, half)
  with pytest.raises(UserInputError, match=refused):
    pruning.scores(params, masks=half)
  with pytest.raises(UserInputError, match=refused):
    jax.jit(masks.apply_masks)(params, half)  # Static: refused while tracing too.
  kept = masks.apply_masks(params, jax.tree.map(lambda m: m > 0.25, half))
  np.testing.assert_array_equal(kept["Dense_0"]["kernel"], params["Dense_0"]["kernel"])
