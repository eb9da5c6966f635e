"""Command line: parse flags, load the config, dispatch. Nothing else lives here.

    python -m lottery_jax.main [--config=configs/X.py] [--config.a.b=value] [--workdir=DIR]

Bad input ends with one line on stderr naming the problem and the valid choices, exit 2.
"""

import os
import sys

from absl import app, flags, logging
from ml_collections import config_flags

_DEFAULT_CONFIG = os.path.join(os.path.dirname(__file__), "default_config.py")

_CONFIG = config_flags.DEFINE_config_file(
    "config", _DEFAULT_CONFIG, "Experiment config file (a Python file with get_config()).",
    lock_config=True)
_WORKDIR = flags.DEFINE_string(
    "workdir", None, "Run directory (default: runs/<data>-<model>-<config hash>).")


def _fail(message: str, status: int = 2):
  print(f"lottery_jax: error: {message}", file=sys.stderr)
  sys.exit(status)


def _parse_flags(argv):
  try:
    return flags.FLAGS(argv)
  except flags.Error as e:
    _fail(str(e).strip().splitlines()[0])
  except (AttributeError, KeyError, TypeError, ValueError) as e:  # Bad config overrides/files.
    _fail(f"bad config: {str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__}")


def _main(argv):
  if len(argv) > 1:
    _fail(f"unexpected arguments {argv[1:]}; flags are --config, --config.<field>=value, "
          "--workdir")
  # Imported here so that `--help` and flag errors answer before JAX starts.
  from lottery_jax import experiment
  from lottery_jax.errors import UserInputError
  from lottery_jax.train import TrainingDiverged
  for name in ("absl", "orbax", "jax._src.xla_bridge"):
    logging.get_absl_logger().setLevel(logging.INFO)
  config = _CONFIG.value
  workdir = _WORKDIR.value or experiment.default_workdir(config)
  try:
    experiment.run(config, workdir)
  except UserInputError as e:
    _fail(str(e))
  except TrainingDiverged as e:
    _fail(str(e), status=1)


def main():
  app.run(_main, flags_parser=_parse_flags)


if __name__ == "__main__":
  main()
