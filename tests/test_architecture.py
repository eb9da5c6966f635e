"""Dependencies run one way: main, aggregate (the entry points) -> runners
-> (validate, report*, rundir, tensorboard, layout) -> library.

Every lottery_jax module's imports (also those inside functions) are read with `ast`; the
import graph must have no circle and no import from a lower layer to a higher one, and only
main imports inside functions (to answer --help and flag errors before JAX loads)."""

import ast
import pathlib

import pytest

from lottery_jax import default_config, validate
from lottery_jax.errors import UserInputError

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "lottery_jax"
MIDDLE = {"lottery_jax.validate", "lottery_jax.report", "lottery_jax.report_distill",
          "lottery_jax.report_training", "lottery_jax.rundir", "lottery_jax.layout",
          "lottery_jax.tensorboard"}  # The run directory's tb/, one TensorBoard run per stage.


def _modules() -> dict[str, pathlib.Path]:
  out = {}
  for path in PACKAGE.rglob("*.py"):
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
  return out


def _layer(module: str) -> int:
  if module in ("lottery_jax.main", "lottery_jax.aggregate"):
    return 3
  if module.startswith("lottery_jax.runners"):
    return 2
  return 1 if module in MIDDLE else 0


def _graph():
  """({module: imported lottery_jax modules}, [(module, imported) inside a function])."""
  modules = _modules()

  def resolve(name):
    while name and name not in modules:
      name = name.rpartition(".")[0]
    return name

  edges, inner = {m: set() for m in modules}, []
  for module, path in modules.items():
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]

    def visit(node, in_function):
      for child in ast.iter_child_nodes(node):
        nested = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
        names = []
        if isinstance(child, ast.Import):
          names = [a.name for a in child.names]
        elif isinstance(child, ast.ImportFrom):
          base = child.module or ""
          if child.level:
            parts = package.split(".")[:len(package.split(".")) - child.level + 1]
            base = ".".join(parts + ([child.module] if child.module else []))
          names = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base
                   for a in child.names]
        for name in names:
          target = resolve(name)
          if target and target != module and target.startswith("lottery_jax"):
            edges[module].add(target)
            if in_function:
              inner.append((module, target))
        visit(child, nested)

    visit(ast.parse(path.read_text()), False)
  return edges, inner


def test_the_import_graph_has_no_circle():
  edges, _ = _graph()
  state = {}

  def visit(m, stack):
    state[m] = "open"
    for n in edges[m]:
      if state.get(n) == "open":
        pytest.fail(f"import circle: {' -> '.join(stack[stack.index(n):] + [n])}")
      if n not in state:
        visit(n, stack + [n])
    state[m] = "done"

  for m in edges:
    if m not in state:
      visit(m, [m])


def test_no_import_runs_back_up_and_only_main_imports_inside_functions():
  edges, inner = _graph()
  upward = sorted((a, b) for a in edges for b in edges[a] if _layer(b) > _layer(a))
  assert upward == []
  assert {a for a, _ in inner} <= {"lottery_jax.main"}


def test_a_moved_field_is_refused_with_its_new_name():
  c = default_config.get_config()
  with c.unlocked():
    c.stability.train_pairs_together = "true"
  with pytest.raises(UserInputError, match=r"^stability.train_pairs_together is now "
                                           r"train.pairs_together; set --config.train."):
    validate.check(c)


def test_the_analyses_pass_the_configured_memory_budget_to_the_sweeps(tmp_path, monkeypatch):
  # The budget is an argument (stability.memory_budget_gb), not module-global state.
  from types import SimpleNamespace

  import jax.numpy as jnp
  import numpy as np

  from lottery_jax import stability
  from lottery_jax.runners import analyses
  seen = {}

  def path_metrics(*args, **kwargs):
    seen.update(kwargs)
    raise InterruptedError

  monkeypatch.setattr(stability, "path_metrics", path_metrics)
  a = SimpleNamespace(params={"w": jnp.ones(3)}, batch_stats={})
  b = SimpleNamespace(params={"w": jnp.zeros(3)}, batch_stats={})
  m = {"w": jnp.ones(3, bool)}
  rep = SimpleNamespace(trained=lambda producer, r, second=False: (m, b if second else a),
                        round_dir=lambda producer, r: str(tmp_path),
                        setup=SimpleNamespace(model=None, mesh=None, data=None))
  st = SimpleNamespace(num_alphas=3, lmc_examples=4, chunk_size=4, point_batch=0,
                       bn_examples=4, memory_budget_gb=1.5)
  images, labels = np.zeros((4, 2, 2, 1), np.float32), np.array([0, 1, 0, 1], np.int32)
  rep.setup.data = SimpleNamespace(test_images=images, test_labels=labels, has_validation=False)
  sample = analyses.AnalysisSample(images, labels, np.arange(4), 2)
  with pytest.raises(InterruptedError):
    analyses.lmc_stage(rep, st, "imp", 1, sample)
  assert seen["memory_budget_gb"] == 1.5
