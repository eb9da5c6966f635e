"""One runner per experiment, each `run(config, workdir)` and `identity(config dict)` (the
fields the experiment reads, which name its run directory):

  lottery    dense training and the mask producers (runners/lottery.py, one replicate's
             stages in runners/replicate.py), then the stability analyses
             (runners/stability.py, also `run` on its own over a finished run)
  distill    make a distilled set with DM or IDC, or take a published one, and evaluate it
             (runners/distill.py)
"""

import hashlib
import importlib
import json
import os

EXPERIMENTS = ("lottery", "distill")


def get(experiment: str):
  """The runner module of `experiment` (a UserInputError naming the valid ones otherwise)."""
  from lottery_jax.errors import unknown_choice
  if experiment not in EXPERIMENTS:
    raise unknown_choice("experiment", experiment, EXPERIMENTS)
  return importlib.import_module(f"{__name__}.{experiment}")


def identity(config) -> dict:
  """The fields of `config` (a ConfigDict) that its experiment's results depend on."""
  from lottery_jax import rundir
  return get(config.experiment).identity(rundir.config_to_dict(config))


def default_workdir(config) -> str:
  """runs/<data>-<model>-<hash of the config's identity>: one directory per distinct run, the
  same when a field the experiment does not read changes."""
  blob = json.dumps(identity(config), sort_keys=True).encode()
  source = os.path.basename(config.data.source.rstrip("/")).split(".")[0] or "data"
  return os.path.join("runs", f"{source}-{config.model.name}-"
                      f"{hashlib.sha256(blob).hexdigest()[:8]}")


def run(config, workdir: str) -> dict:
  """Run (or resume) the experiment `config.experiment` in `workdir`; results.json's content."""
  from lottery_jax import parallel
  from lottery_jax.errors import UserInputError
  parallel.maybe_initialize_distributed()
  runner = get(config.experiment)
  if config.experiment == "distill" and parallel.is_multiprocess():
    raise UserInputError("experiment 'distill' runs in one process; start it without "
                         "--num_processes (one host), then use its .npz in a lottery run")
  return runner.run(config, workdir)
