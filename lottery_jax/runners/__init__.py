"""One runner per experiment, each `run(config, workdir)` and `identity(config dict)` (the
fields the experiment reads, which name its run directory):

  lottery    dense training and the mask producers (runners/lottery.py, one replicate's
             stages in runners/replicate.py), then the stability analyses
             (runners/analyses.py; `lottery.run_analyses` runs them alone over a finished run)
  distill    make a distilled set with DM or IDC, or take a published one, and evaluate it
             (runners/distill.py)

`run` validates the config and the work directory once (`check`), then dispatches; the
runners trust what they are given. Dependencies run one way: main -> runners -> (validate,
report, rundir) -> library; nothing below this package imports it.
"""

import hashlib
import importlib
import json
import os

from lottery_jax import parallel
from lottery_jax import rundir
from lottery_jax import validate
from lottery_jax.errors import UserInputError, unknown_choice


def get(experiment: str):
  """The runner module of `experiment` (a UserInputError naming the valid ones otherwise)."""
  if experiment not in validate.EXPERIMENTS:
    raise unknown_choice("experiment", experiment, validate.EXPERIMENTS)
  return importlib.import_module(f"{__name__}.{experiment}")


def identity(config) -> dict:
  """The fields of `config` (a ConfigDict) that its experiment's results depend on."""
  return get(config.experiment).identity(rundir.config_to_dict(config))


def default_workdir(config) -> str:
  """runs/<data>-<model>-<hash of the config's identity>: one directory per distinct run, the
  same when a field the experiment does not read changes."""
  blob = json.dumps(identity(config), sort_keys=True).encode()
  source = os.path.basename(config.data.source.rstrip("/")).split(".")[0] or "data"
  return os.path.join("runs", f"{source}-{config.model.name}-"
                      f"{hashlib.sha256(blob).hexdigest()[:8]}")


def check(config, workdir: str | None = None) -> str:
  """Validate `config` (validate.check) and its work directory, `workdir` or the default one;
  returns the work directory. The one place a run is validated; UserInputError otherwise."""
  validate.check(config)
  workdir = workdir or default_workdir(config)
  validate.check_workdir(workdir)
  return workdir


def dispatch(config, workdir: str) -> dict:
  """Run (or resume) the experiment of a config `check` accepted; results.json's content."""
  parallel.maybe_initialize_distributed()
  runner = get(config.experiment)
  if config.experiment == "distill" and parallel.is_multiprocess():
    raise UserInputError("experiment 'distill' runs in one process; start it without "
                         "--num_processes (one host), then use its .npz in a lottery run")
  return runner.run(config, workdir)


def run(config, workdir: str) -> dict:
  """Validate, then run (or resume) the experiment `config.experiment` in `workdir`;
  results.json's content."""
  return dispatch(config, check(config, workdir))
