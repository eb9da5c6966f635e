"""Every config file and its variants load, lock and pass validation; a bad variant is one line."""

import importlib.util
import pathlib
import re
import subprocess
import sys

import ml_collections
import pytest

from lottery_jax import default_config, validate
from lottery_jax.errors import UserInputError

import tiny

ROOT = pathlib.Path(__file__).resolve().parents[1]
# Every config file (configs/presets.py is the module they share, not a config).
CONFIG_FILES = sorted(p for p in (ROOT / "configs").glob("*.py") if p.name != "presets.py")


def _module(path):
  spec = importlib.util.spec_from_file_location(path.stem, path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


VARIANTS = ("smoke", "cpu", "rewind", "cpu,rewind", "smoke,rewind", "rewind,smoke", "authors",
            "cpu,authors", "authors,cpu", "smoke,authors")


def _variants(get_config):
  """None and the VARIANTS the config accepts (configs/presets.py); every config has `smoke`."""
  accepted = [None]
  for arg in VARIANTS:
    try:
      get_config(arg)
    except ValueError as e:
      assert "unknown config variant" in str(e)
      continue
    accepted.append(arg)
  assert "smoke" in accepted
  return accepted


@pytest.mark.parametrize("path", CONFIG_FILES, ids=lambda p: p.stem)
def test_every_config_and_variant_loads_and_validates(path):
  get_config = _module(path).get_config
  for arg in _variants(get_config):
    c = get_config(arg) if arg else get_config()
    assert c.is_locked, (path.stem, arg)
    validate.check(c)
    if arg == "smoke" and c.experiment == "distill":
      assert c.distill.eval_seeds == 1 and c.distill.eval_train.num_steps == 20
    elif arg == "smoke":
      assert c.lottery.rounds == 1 and c.lottery.replicates == 1
      assert c.model.options.width == 32 and c.stability.lmc_examples == 1000
    if arg == "cpu":
      assert (c.model.options.width, c.data.train_examples, c.train.epochs) == (32, 20000, 10.0)
      assert c.lottery.rounds == 7 and c.lottery.hybrid_syn_rounds == 4
    if arg == "cpu,rewind":  # Applied in order: 3% of the cpu preset's 10 epochs.
      assert c.lottery.producers == ("imp",) and c.stability.analyses == ()
      assert c.lottery.rewind_epochs == pytest.approx(0.3)
    if arg in ("smoke,rewind", "rewind,smoke"):  # 3% of 20 steps, at least 1, either order.
      assert (c.lottery.rewind_epochs, c.lottery.rewind_steps) == (0.0, 1)
    if arg and "authors" in arg:  # Their recipe, whatever the order; the sizes set the length.
      t = c.train
      assert (t.optimizer, t.learning_rate, t.momentum, t.weight_decay, t.batch_size) == (
          "sgd", 0.01, 0.9, 5e-4, 64)
      assert (t.schedule, tuple(t.decay_at), t.decay_factor) == ("step", (2 / 3, 5 / 6), 0.2)
      assert (c.data.augment, c.data.cutmix_prob, c.data.cutmix_beta) == ("idc_dsa", 0.5, 1.0)
      assert c.data.preprocess == "standardize"
      length = {"authors": (300.0, 0), "cpu,authors": (10.0, 0), "authors,cpu": (10.0, 0),
                "smoke,authors": (300.0, 20)}[arg]
      assert (t.epochs, t.num_steps) == length
      if c.model.name == "convnet":
        assert c.model.options.norm == "instance"
        assert c.model.options.width == (128 if arg == "authors" else 32)


def test_the_quickstart_config_validates():
  validate.check(default_config.get_config())


def test_a_bad_variant_is_one_line_and_exit_2(tmp_path):
  done = subprocess.run(
      [sys.executable, "-m", "lottery_jax.main", "--config=configs/cifar10_convnet.py:fast",
       f"--workdir={tmp_path / 'run'}"], cwd=ROOT, capture_output=True, text=True, check=False)
  assert done.returncode == 2
  assert done.stderr.strip().splitlines() == [
      "lottery_jax: error: config file configs/cifar10_convnet.py does not load: unknown config "
      "variant 'fast'; valid: 'smoke', 'cpu', 'rewind', 'authors' (or none), comma-separated"]
  assert not (tmp_path / "run").exists()


def test_lmc_producers_selects_who_gets_a_pair_and_refuses_unknown_names():
  from lottery_jax.runners import analyses
  from lottery_jax.errors import UserInputError
  c = default_config.lottery_base()
  c.stability.lmc_producers = ("dense", "distilled", "hybrid")  # hybrid is not made here.
  assert analyses.lmc_targets(c.stability, c.lottery) == ("dense", "distilled")
  c.stability.lmc_producers = ("dense", "imp", "magnitude")
  with pytest.raises(UserInputError, match="magnitude"):
    validate.check(c)


def _quickstart(**overrides):
  return tiny.set_fields(default_config.get_config(), **overrides)


def test_a_lottery_runs_identity_covers_only_the_fields_it_reads(tmp_path):
  from lottery_jax import rundir, runners
  from lottery_jax.errors import UserInputError
  base = _quickstart(**{"distilled.source": "random_subset"})
  unread = _quickstart(**{"distilled.source": "random_subset", "distill.dm.iterations": 5,
                          "distill.images_per_class": 3})
  read = _quickstart(**{"distilled.source": "random_subset", "lottery.rounds": 2})
  assert runners.default_workdir(unread) == runners.default_workdir(base)
  assert runners.default_workdir(read) != runners.default_workdir(base)
  # Without a producer that trains on it, the distilled set's fields are not read either.
  no_distilled = dict(**{"lottery.producers": ("imp", "random")})
  assert runners.default_workdir(_quickstart(**no_distilled)) == runners.default_workdir(
      _quickstart(**no_distilled, **{"distilled.train.learning_rate": 0.5}))
  workdir = str(tmp_path / "run")
  identity = runners.get("lottery").identity
  rundir.claim(workdir, base, identity=identity)
  rundir.claim(workdir, unread, identity=identity)  # Resumed, not refused.
  with pytest.raises(UserInputError, match=r"different config \(differs in lottery.rounds\)"):
    rundir.claim(workdir, read, identity=identity)


def test_a_distill_runs_identity_leaves_out_the_other_method():
  from lottery_jax import runners
  c = default_config.distill_base()
  other = default_config.distill_base()
  other.distill.idc.iterations = 7
  assert runners.default_workdir(c) == runners.default_workdir(other)
  other.distill.dm.iterations = 7
  assert runners.default_workdir(c) != runners.default_workdir(other)


@pytest.mark.parametrize("path", CONFIG_FILES, ids=lambda p: p.stem)
def test_lottery_configs_read_nothing_outside_the_repository(path):
  get_config = _module(path).get_config
  for arg in _variants(get_config):
    c = get_config(arg) if arg else get_config()
    if c.experiment != "lottery":
      continue
    # The ImageNet-10 config needs a folder the user names (paper scale only).
    fields = ("distilled.source",) if path.stem.startswith("imagenet") else (
        "data.source", "distilled.source")
    for field in fields:
      value = c.data.source if field == "data.source" else c.distilled.source
      if "/" in value or value.endswith((".npz", ".tar.gz")):
        resolved = (ROOT / value).resolve()
        assert resolved.is_relative_to(ROOT), (path.stem, arg, field, value)


@pytest.mark.parametrize("path", ["digits_convnet", "cifar10_convnet"])
def test_smoke_and_rewind_compose_at_the_same_share_of_training(path):
  """`:smoke,rewind` was refused on CIFAR-10 (3 of 100 epochs is beyond 20 smoke steps) and
  rewound at 34% of training on digits; it now rewinds to 3% of the smoke run's 20 steps."""
  from lottery_jax import plan
  c = _module(ROOT / "configs" / f"{path}.py").get_config("smoke,rewind")
  validate.check(c)
  shape, num_train = ((8, 8, 1), 1437) if path.startswith("digits") else ((32, 32, 3), 50000)
  plan.check_against_data(c, num_train, shape, 10, None)
  k = plan.rewind_steps(c.lottery, num_train, c.train.batch_size)
  assert k == 1 and k / c.train.num_steps <= 0.05


def test_the_rewind_step_field_leaves_committed_run_identities_alone():
  """lottery.rewind_steps at 0 is not part of a run's identity: the fig7 rewind companion
  (`configs/cifar10_convnet.py:cpu,rewind`, committed results) keeps its identity hash."""
  from lottery_jax import runners
  get_config = _module(ROOT / "configs" / "cifar10_convnet.py").get_config
  assert "rewind_steps" not in runners.identity(get_config("cpu,rewind"))["lottery"]
  assert runners.default_workdir(get_config("cpu,rewind")) == "runs/cifar10-convnet-b367d240"
  assert runners.identity(get_config("smoke,rewind"))["lottery"]["rewind_steps"] == 1


@pytest.mark.parametrize("path,value,message", [
    ("distilled.dsa.crop", 0.7, "DSA crop must be a number in [0.0, 0.5], got 0.7"),
    ("distilled.dsa.scale", 0.5, "DSA scale must be a number in [1.0, 4.0], got 0.5"),
    ("distilled.dsa.flip", 1.5, "DSA flip must be a number in [0.0, 1.0], got 1.5"),
    ("distill.dsa.contrast", -0.1, "DSA contrast must be a number in [0.0, 1.0], got -0.1"),
    ("stability.filter_normalize", 1, "stability.filter_normalize must be True or False"),
    ("distill.idc.clip", "yes", "distill.idc.clip must be True or False"),
])
def test_dsa_strengths_and_flags_out_of_range_are_refused(path, value, message):
  """A strength the ops would silently reinterpret (a translation past the image, a scale
  below 1, a flip probability above 1) or a flag that is not a bool is one line naming it."""
  c = ml_collections.ConfigDict(default_config.lottery_base().to_dict(), type_safe=False)
  c.distilled.augment = "dsa"
  c.distilled.source = "idc" if path.startswith("distill.idc") else "dm"
  node = c
  *parents, name = path.split(".")
  for part in parents:
    node = node[part]
  node[name] = value
  with pytest.raises(UserInputError, match=re.escape(message)):
    validate.check(c)


def test_a_distill_config_refuses_a_random_baseline_that_is_not_a_bool():
  c = ml_collections.ConfigDict(default_config.distill_base().to_dict(), type_safe=False)
  c.distill.random_baseline = "no"
  with pytest.raises(UserInputError, match="distill.random_baseline must be True or False"):
    validate.check(c)
