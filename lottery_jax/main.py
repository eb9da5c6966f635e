"""Command line: parse flags, load the config, dispatch. Nothing else lives here.

    python -m lottery_jax.main [--config=configs/X.py] [--config.a.b=value] [--workdir=DIR]
        [--coordinator_address=HOST:PORT --num_processes=N --process_id=I] [--print_config]

Bad input ends with one line on stderr naming the problem and the valid choices, exit 2.
"""

import signal
import sys

_SIGNALS: list[int] = []  # SIGINT / SIGTERM received, even when a library swallowed them.
_RAISING = [False]  # Whether a signal raises now (not while C extensions initialise).


class Interrupted(KeyboardInterrupt):
  """Ctrl-C (SIGINT) or SIGTERM; exit status 128 + the signal's number."""

  def __init__(self, signum: int):
    super().__init__(signal.Signals(signum).name)
    self.signum = signum


def _on_signal(signum, frame):  # pylint: disable=unused-argument
  _SIGNALS.append(signum)
  if _RAISING[0]:
    raise Interrupted(signum)


def _catch_signals() -> None:
  """SIGINT and SIGTERM are remembered, and raise Interrupted once the libraries are imported
  (raising inside an extension's initialisation crashes or is swallowed); the command line
  only, as the handlers are process-wide. An Interrupted raised where Python cannot propagate
  it (a gc callback) is not printed: the remembered signal ends the run."""
  for signum in (signal.SIGINT, signal.SIGTERM):
    signal.signal(signum, _on_signal)
  unraisable = sys.unraisablehook
  sys.unraisablehook = lambda u: None if isinstance(u.exc_value, Interrupted) else unraisable(u)


def _import_libraries() -> None:
  """Import the heavy libraries with signals only remembered, then let them raise."""
  import flax.linen  # noqa: F401  pylint: disable=unused-import,g-import-not-at-top
  import jax  # noqa: F401  pylint: disable=unused-import,g-import-not-at-top
  import optax  # noqa: F401  pylint: disable=unused-import,g-import-not-at-top
  import orbax.checkpoint  # noqa: F401  pylint: disable=unused-import,g-import-not-at-top
  _RAISING[0] = True
  _check_signals(None)


if __name__ == "__main__":  # Before the imports: a Ctrl-C during them is not lost.
  _catch_signals()

# XLA:CPU defaults first: XLA reads XLA_FLAGS once, when jax initialises (the user's flags win).
from lottery_jax import xla_defaults  # noqa: E402  pylint: disable=g-bad-import-order

xla_defaults.apply()

import importlib.util  # noqa: E402
import logging as std_logging  # noqa: E402
import os  # noqa: E402

try:
  from absl import app, flags, logging  # noqa: E402
  from ml_collections import config_flags  # noqa: E402

  from lottery_jax import config_blocks  # noqa: E402  (ml_collections only)
  from lottery_jax.errors import TrainingDiverged, UserInputError  # noqa: E402
except ImportError as missing:  # The core install: the library only.
  print(f"lottery_jax: error: the experiments need the 'experiments' extra ({missing.name} is "
        "not installed): pip install -e '.[experiments]'", file=sys.stderr)
  sys.exit(2)

DEFAULT_CONFIG = os.path.join(os.path.dirname(__file__), "default_config.py")


def _fail(message: str, status: int = 2):
  if _SIGNALS and status not in (130, 143):  # Whatever failed after it, a signal stopped it.
    _fail_interrupted(_SIGNALS[0], None)
  print(f"lottery_jax: error: {message}", file=sys.stderr)
  sys.exit(status)


def _first_line(e: BaseException) -> str:
  text = str(e).strip()
  if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":  # KeyError('x') -> 'x'.
    text = text[1:-1]
  return text.splitlines()[0] if text else type(e).__name__


def _config_path(argv) -> tuple[str, str | None]:
  """(config file, variant) of --config=FILE[:VARIANT]."""
  value = DEFAULT_CONFIG
  for i, arg in enumerate(argv):
    if arg.startswith("--config="):
      value = arg.split("=", 1)[1]
    elif arg == "--config" and i + 1 < len(argv):
      value = argv[i + 1]
  path, _, variant = value.partition(":")
  return (path, variant) if variant else (value, None)


def _explain_config_error(argv, error: BaseException) -> str:
  """One line saying which config file or --config.<field> override is wrong, and why."""
  path, variant = _config_path(argv)
  if not os.path.isfile(path):
    return f"config file not found: {path} (configs live in configs/*.py)"
  try:
    spec = importlib.util.spec_from_file_location("_lottery_jax_config", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    config = module.get_config(variant) if variant else module.get_config()
  except Exception as e:  # A broken config file or variant: say so in one line.
    return f"config file {path} does not load: {_first_line(e)}"
  for arg in argv:
    if not arg.startswith("--config."):
      continue
    field = arg[len("--config."):].split("=", 1)[0]
    if field in config_blocks.MOVED:
      new = config_blocks.MOVED[field]
      return f"{field} is now {new}; set --config.{new}"
    node, walked = config, []
    for part in field.split("."):
      if not hasattr(node, "keys") or part not in node:
        where = ".".join(walked) or "the config"
        valid = ", ".join(sorted(node.keys())) if hasattr(node, "keys") else "none"
        return f"unknown config field {field!r} ({part!r} is not in {where}; valid: {valid})"
      node = node[part]
      walked.append(part)
  return f"bad config: {_first_line(error)}"


def _define_flags(argv):
  try:
    config = config_flags.DEFINE_config_file(
        "config", DEFAULT_CONFIG, "Experiment config file (a Python file with get_config()).",
        lock_config=True)
  except Exception as e:  # ml_collections applies overrides here; explain the bad one.
    _fail(_explain_config_error(argv, e))
  workdir = flags.DEFINE_string(
      "workdir", None, "Run directory (default: runs/<data>-<model>-<config hash>).")
  flags.DEFINE_string("coordinator_address", None,
                      "Multi-process runs: HOST:PORT of process 0's coordinator (every process "
                      "gives the same). Without the three flags, Cloud TPU pod slices and SLURM "
                      "jobs are detected; otherwise the run is one process.")
  flags.DEFINE_integer("num_processes", None, "Multi-process runs: number of processes.")
  flags.DEFINE_integer("process_id", None, "Multi-process runs: this process's index, 0..N-1.")
  flags.DEFINE_bool("print_config", False, "Print every config field with its value (after "
                    "the --config.<field> overrides) and exit without running.")
  return config, workdir


def _repeated_override(argv) -> str | None:
  """The first --config or --config.<field> given twice: absl keeps the last config file,
  config_flags joins a tuple field's values and keeps a scalar's last, so a repeated flag is
  refused rather than guessed at."""
  seen = set()
  for arg in argv[1:]:
    if arg == "--config" or arg.startswith(("--config=", "--config.")):
      name = arg[2:].split("=", 1)[0]
      if name in seen:
        if name == "config":
          return "--config is given more than once (the last file would win); give one file"
        return (f"--{name} is given more than once (a tuple field would join the "
                "values, a scalar keep the last); give it once")
      seen.add(name)
  return None


def _parse_flags(argv):
  repeated = _repeated_override(argv)
  if repeated:
    _fail(repeated)
  try:
    return flags.FLAGS(argv)
  except flags.Error as e:
    _fail(_explain_config_error(argv, e) if str(e).startswith("flag --config")
          else _first_line(e))
  except Exception as e:  # Bad config overrides and files surface as many types.
    _fail(_explain_config_error(argv, e))


def _run(argv, config_flag, workdir_flag):
  if len(argv) > 1:
    _fail(f"unexpected arguments {argv[1:]}; flags are --config, --config.<field>=value, "
          "--workdir, --coordinator_address, --num_processes, --process_id")
  if flags.FLAGS.print_config:
    _print_config(config_flag)
    return
  if not flags.FLAGS["verbosity"].present:  # Orbax logs every checkpoint step at INFO.
    logging.set_verbosity(logging.WARNING)
  std_logging.getLogger("lottery_jax").setLevel(std_logging.INFO)
  _quiet_orbax()
  if signal.getsignal(signal.SIGINT) is _on_signal:
    _import_libraries()
  # Imported here so that `--help` and flag errors answer before JAX starts.
  from lottery_jax import runners
  try:
    config = config_flag.value
    config.to_dict()  # A config that failed to load is a placeholder that raises here.
  except Exception as e:
    _fail(_explain_config_error(sys.argv, e))
  try:  # Before joining other processes (which would wait for peers) or naming the work dir.
    workdir = runners.check(config, workdir_flag.value)
  except UserInputError as e:
    _fail(str(e))
  _start_processes()
  _dispatch(config, workdir)


def _print_config(config_flag):
  """Every field of the config as `a.b.c = value`, one a line, in the config's order."""
  try:
    config = config_flag.value.to_dict()
  except Exception as e:
    _fail(_explain_config_error(sys.argv, e))

  def lines(node, prefix):
    for key, value in node.items():
      if isinstance(value, dict):
        yield from lines(value, f"{prefix}{key}.")
      else:
        yield f"{prefix}{key} = {value!r}"

  print("\n".join(lines(config, "")))


def _start_processes():
  """Join the other processes of a multi-process run (see parallel.initialize) before
  anything touches JAX; inconsistent flags end in one line, exit 2."""
  from lottery_jax import parallel
  f = flags.FLAGS
  try:
    parallel.initialize(f.coordinator_address, f.num_processes, f.process_id)
  except UserInputError as e:
    _fail(str(e))
  except (RuntimeError, ValueError) as e:  # Coordinator unreachable, timeouts.
    _fail(f"cannot join the other processes at {f.coordinator_address}: {_first_line(e)}; "
          "start every process with the same --coordinator_address and --num_processes")


def execute(config, workdir: str):
  """Validate `config` and `workdir`, then run; every failure ends in `_fail` (one line)."""
  from lottery_jax import runners
  try:
    _check_signals(None)
    workdir = runners.check(config, workdir)
  except UserInputError as e:
    _fail(str(e))
  _dispatch(config, workdir)


def _dispatch(config, workdir: str):
  """Run a validated config (runners.dispatch); every failure ends in `_fail` (one line)."""
  from lottery_jax import runners
  try:
    _check_signals(None)
    runners.dispatch(config, workdir)
  except UserInputError as e:
    _fail(str(e))
  except TrainingDiverged as e:
    _fail(str(e), status=DIVERGED)
  except KeyboardInterrupt as e:
    _fail_interrupted(getattr(e, "signum", signal.SIGINT), workdir)
  except OSError as e:
    _fail(_explain_os_error(e, workdir))
  except Exception:  # pylint: disable=broad-except
    _check_signals(workdir)  # An interrupted import or write can surface as any error.
    raise
  _check_signals(workdir)


def _fail_interrupted(signum: int, workdir: str | None):
  where = f"files already written in {workdir} are kept and " if workdir else ""
  name = "" if signum == signal.SIGINT else f" by {signal.Signals(signum).name}"
  _fail(f"interrupted{name}; {where}a rerun of the same command resumes", status=128 + signum)


def _check_signals(workdir: str | None) -> None:
  """Exit 130 / 143 when a signal arrived that a library caught and swallowed."""
  if _SIGNALS:
    _fail_interrupted(_SIGNALS[0], workdir)


# Exit status of a run stopped because training diverged (NaN or Inf).
DIVERGED = 3


def _explain_os_error(e: OSError, workdir: str) -> str:
  """One line for a failed read or write: what, where, and what to do."""
  import errno
  where = f" ({e.filename})" if getattr(e, "filename", None) else ""
  if e.errno == errno.ENOSPC or "RESOURCE_EXHAUSTED" in str(e) or "No space" in str(e):
    return (f"disk full{where}: free space and rerun the same command; it resumes from the "
            f"files already written in {workdir}")
  reason = e.strerror or _first_line(e)
  return (f"cannot read or write{where}: {reason}; fix the path or its permissions and rerun "
          "the same command to resume")


def main():
  _catch_signals()
  try:
    try:
      config_flag, workdir_flag = _define_flags(sys.argv)
      app.run(lambda argv: _run(argv, config_flag, workdir_flag), flags_parser=_parse_flags)
    except SystemExit:
      raise
    except BaseException as e:  # An import cut short by Ctrl-C fails as an ImportError.
      if _SIGNALS or isinstance(e, KeyboardInterrupt):
        _fail_interrupted(_SIGNALS[0] if _SIGNALS else signal.SIGINT, None)
      raise
  except SystemExit as e:
    if e.code in (0, None):
      raise
    # The error line is printed and is the last one: leave now, so that no write cut short
    # (an orbax checkpoint: Ctrl-C, disk full) prints a traceback at interpreter exit; a
    # checkpoint cut short is discarded by the next run.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(e.code if isinstance(e.code, int) else 1)


class _NotOrbax(std_logging.Filter):
  """Drops the records of a failed orbax write (logged with their tracebacks before orbax
  raises, or by asyncio for its unretrieved tasks); the error line says what failed."""

  def filter(self, record):
    return ("/orbax/" not in record.pathname.replace(os.sep, "/")
            and "/orbax/" not in record.getMessage())


def _quiet_orbax() -> None:
  for logger in (std_logging.getLogger(), std_logging.getLogger("absl")):
    logger.addFilter(_NotOrbax())
    for handler in logger.handlers:
      handler.addFilter(_NotOrbax())
  logging.get_absl_handler().addFilter(_NotOrbax())


if __name__ == "__main__":
  main()
