"""Every config file and its variants load, lock and pass validation; a bad variant is one line."""

import importlib.util
import pathlib
import subprocess
import sys

import pytest

from lottery_jax import default_config, validate

import tiny

ROOT = pathlib.Path(__file__).resolve().parents[1]
# Every config file (configs/presets.py is the module they share, not a config).
CONFIG_FILES = sorted(p for p in (ROOT / "configs").glob("*.py") if p.name != "presets.py")


def _module(path):
  spec = importlib.util.spec_from_file_location(path.stem, path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


VARIANTS = ("smoke", "cpu", "rewind", "cpu,rewind", "smoke,rewind")


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


def test_the_quickstart_config_validates():
  validate.check(default_config.get_config())


def test_a_bad_variant_is_one_line_and_exit_2(tmp_path):
  done = subprocess.run(
      [sys.executable, "-m", "lottery_jax.main", "--config=configs/cifar10_convnet.py:fast",
       f"--workdir={tmp_path / 'run'}"], cwd=ROOT, capture_output=True, text=True, check=False)
  assert done.returncode == 2
  assert done.stderr.strip().splitlines() == [
      "lottery_jax: error: config file configs/cifar10_convnet.py does not load: unknown config "
      "variant 'fast'; valid: 'smoke', 'cpu', 'rewind' (or none), comma-separated"]
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
