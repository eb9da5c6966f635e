"""The run directory: config.json (refusing a different config), inputs.json (refusing changed
input files; it keeps a copy of config.json), a lock on the directory itself (refusing a second
process; the file `lock` only names the holder), metrics.jsonl, results.json.

Files are written atomically (temporary file + rename), so a killed run never leaves half a
result behind, and nothing already written is overwritten by a run that is refused. In a
multi-process run only process 0 claims the directory, takes the lock and writes these files
(`write_json` and `MetricsLog.write` do nothing in the others).
"""

import fcntl
import hashlib
import json
import os
import socket
import time
from typing import Any, Callable

import ml_collections

from lottery_jax import atomic
from lottery_jax import parallel
from lottery_jax import tensorboard as tensorboard_lib
from lottery_jax.errors import UserInputError
from lottery_jax.layout import CONFIG, INPUTS, RESULTS

CONFIG_COPY = "config"  # inputs.json's copy of config.json, which rebuilds a deleted one.


def write_json(path: str, obj: Any) -> None:
  """Write `obj` as indented JSON to `path` atomically (process 0 only)."""
  if not parallel.is_writer():
    return
  atomic.write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=_jsonable) + "\n")


def read_json(path: str) -> Any:
  """The JSON in `path`; a UserInputError naming the file when it is truncated or corrupt."""
  with open(path) as f:
    text = f.read()
  try:
    return json.loads(text)
  except ValueError as e:
    raise UserInputError(f"{path} is truncated or corrupt ({e}); delete it and rerun to "
                         "recompute it") from None


def file_sha256(path: str) -> str:
  """Hex sha256 of a file's bytes (a UserInputError if it cannot be read)."""
  h = hashlib.sha256()
  try:
    with open(os.path.expanduser(path), "rb") as f:
      for block in iter(lambda: f.read(1 << 20), b""):
        h.update(block)
  except OSError as e:
    raise UserInputError(f"cannot read {path}: {e.strerror or e}") from None
  return h.hexdigest()


_LOCKS: dict[str, int] = {}  # Absolute work dir -> descriptor of the directory it locks.
HOLDER_NOTE = "lock"  # <workdir>/lock: who holds the lock, for people; deleting it frees nothing.


def lock(workdir: str) -> None:
  """Hold an exclusive fcntl.flock on the directory `workdir` itself until this process exits
  (so deleting a file in it cannot free it), with `<workdir>/lock` a note naming the holder; a
  UserInputError naming the holder (pid, host) when another live process holds it. The kernel
  drops the lock of a process that dies, so a dead holder's lock is simply taken over."""
  key = os.path.abspath(workdir)
  if key in _LOCKS:
    return
  os.makedirs(workdir, exist_ok=True)
  fd = os.open(workdir, os.O_RDONLY | os.O_DIRECTORY)
  try:
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
  except BlockingIOError:
    holder = _holder(workdir, os.fstat(fd))
    os.close(fd)
    raise UserInputError(f"work dir {workdir} is in use by {holder}; wait for that run to end "
                         "or use another --workdir") from None
  _LOCKS[key] = fd
  atomic.write_text(os.path.join(workdir, HOLDER_NOTE),
                    f"pid {os.getpid()} on host {socket.gethostname()}\n")


def _holder(workdir: str, stat: os.stat_result) -> str:
  """Who holds the lock on `workdir` (whose os.stat is `stat`): its note, else the pid the
  kernel lists in /proc/locks (Linux, a holder on this host), else 'another process'."""
  try:
    with open(os.path.join(workdir, HOLDER_NOTE)) as f:
      note = f.read(200).strip()
  except OSError:
    note = ""
  if note:
    return note
  pid = _flock_pid(stat)
  return f"pid {pid} on host {socket.gethostname()}" if pid else "another process"


def _flock_pid(stat: os.stat_result) -> int | None:
  """The pid holding a flock on the file whose os.stat is `stat`, from /proc/locks (lines
  such as `1: FLOCK ADVISORY WRITE <pid> <major hex>:<minor hex>:<inode> 0 EOF`); None when
  it is not listed or the table cannot be read."""
  device = f"{os.major(stat.st_dev):02x}:{os.minor(stat.st_dev):02x}:{stat.st_ino}"
  try:
    with open("/proc/locks") as f:
      rows = [line.split() for line in f]
  except OSError:
    return None
  for row in rows:
    if len(row) > 5 and row[1] == "FLOCK" and row[5] == device and row[4].isdigit():
      return int(row[4])
  return None


def _jsonable(x):
  if hasattr(x, "tolist"):
    return x.tolist()
  if isinstance(x, (set, tuple)):
    return list(x)
  raise TypeError(f"not JSON-serialisable: {type(x).__name__}")


def config_to_dict(config: ml_collections.ConfigDict) -> dict:
  """The config as plain JSON data (tuples become lists)."""
  return json.loads(json.dumps(config.to_dict(), default=_jsonable))


def whole(config: dict) -> dict:
  """The identity that covers every field (for experiments that read them all)."""
  return config


def without_locations(config: dict) -> dict:
  """`config` (a dict, changed in place) with the fields that say where caches live, not what
  a run computes (data.cache_dir), set to their defaults: an identity ignores them, and a
  default run directory keeps its name."""
  if "cache_dir" in config.get("data", {}):
    config["data"]["cache_dir"] = ""
  return config


def claim(workdir: str, config: ml_collections.ConfigDict, inputs: dict | None = None,
          identity: Callable[[dict], dict] = whole) -> None:
  """Make `workdir` this config's run directory, held by this process (`_claim`). With several
  processes, process 0 claims it and the others learn whether it succeeded (every process
  raises a UserInputError when it did not; process 0's names the reason)."""
  if not parallel.is_multiprocess():
    _claim(workdir, config, inputs, identity)
    return
  refusal = None
  if parallel.is_writer():
    try:
      _claim(workdir, config, inputs, identity)
    except (UserInputError, OSError) as e:
      refusal = e
  if not parallel.agreed(refusal is None):
    raise refusal or UserInputError(f"process 0 refused work dir {workdir}; its error line "
                                    "says why")


def _claim(workdir: str, config: ml_collections.ConfigDict, inputs: dict | None,
           identity: Callable[[dict], dict]) -> None:
  """Make `workdir` this config's run directory, held by this process.

  A new or empty directory gets config.json (the whole config); one holding a config of the
  same identity (`identity(config dict)`: the fields the experiment reads) is resumed, and
  config.json stays as first written (rebuilt from inputs.json's copy when deleted); one
  holding a config of another identity is refused with a UserInputError naming the differing
  keys. `inputs` ({name: content hash}) are recorded in inputs.json, with a copy of
  config.json, on the first claim; a resume whose inputs differ is refused. The lock (see
  `lock`) is taken only once the directory is known to be this config's, so a refused run
  changes nothing.
  """
  wanted = config_to_dict(config)
  recorded = recorded_config(workdir)
  if recorded is not None and identity(recorded) != identity(wanted):
    diff = sorted(diff_keys(identity(recorded), identity(wanted)))
    shown = ", ".join(diff[:5]) + (" ..." if len(diff) > 5 else "")
    raise UserInputError(f"work dir {workdir} holds a run of a different config "
                         f"(differs in {shown}); use another --workdir or the same config")
  lock(workdir)
  recorded = wanted if recorded is None else recorded
  if not os.path.exists(os.path.join(workdir, CONFIG)):
    write_json(os.path.join(workdir, CONFIG), recorded)
  if inputs is not None:
    _pin_inputs(workdir, dict(inputs, **{CONFIG_COPY: recorded}))


def recorded_config(workdir: str) -> dict | None:
  """The config dict the run in `workdir` started with: config.json, or, when it was deleted,
  the copy in inputs.json; None for a directory no run has claimed. A UserInputError when the
  directory holds a run (inputs.json or results.json) but neither."""
  path = os.path.join(workdir, CONFIG)
  if os.path.exists(path):
    return read_json(path)
  inputs_path = os.path.join(workdir, INPUTS)
  pinned = read_json(inputs_path) if os.path.exists(inputs_path) else {}
  copy = pinned.get(CONFIG_COPY) if isinstance(pinned, dict) else None
  if copy is None and (pinned or os.path.exists(os.path.join(workdir, RESULTS))):
    raise UserInputError(f"work dir {workdir} holds a run but no config.json (nor its copy in "
                         "inputs.json), so its files cannot be matched to a config; move "
                         f"{workdir} away to start afresh, or use another --workdir")
  return copy


def _pin_inputs(workdir: str, inputs: dict) -> None:
  """Record `inputs` in inputs.json, or refuse inputs that differ from those recorded (the
  config copy is checked against config.json instead, and added when missing)."""
  path = os.path.join(workdir, INPUTS)
  if not os.path.exists(path):
    write_json(path, inputs)
    return
  pinned = read_json(path)
  for name in sorted((set(pinned) | set(inputs)) - {CONFIG_COPY}):
    then, now = pinned.get(name), inputs.get(name)
    if then == now:
      continue
    if _is_hash(then) and _is_hash(now):
      raise UserInputError(
          f"the {name} input of work dir {workdir} changed since the run started (content "
          f"hash {then[:12]} then, {now[:12]} now); restore the original file or use another "
          "--workdir")
    raise UserInputError(
        f"the {name} of work dir {workdir} changed since the run started "
        f"({'not recorded' if then is None else repr(then)} then, "
        f"{'none' if now is None else repr(now)} now); its results would mix the two: use "
        "another --workdir")
  if CONFIG_COPY not in pinned:  # A run from before inputs.json kept the copy.
    write_json(path, dict(pinned, **{CONFIG_COPY: inputs[CONFIG_COPY]}))


def _is_hash(value) -> bool:
  return isinstance(value, str) and all(c in "0123456789abcdef" for c in value)


def finished_results(workdir: str, config: ml_collections.ConfigDict,
                     identity: Callable[[dict], dict] = whole, keys: tuple[str, ...] = ()):
  """results.json of a finished run of `config` in `workdir` (refusing a config of another
  identity there, as `claim`, and a results.json without a config to match or without the
  top-level `keys` its experiment writes), or None when the run has not finished. A deleted
  config.json is rebuilt from inputs.json's copy."""
  path = os.path.join(workdir, RESULTS)
  if not parallel.exists(path):
    return None
  recorded = recorded_config(workdir)  # Not None: results.json is there.
  if identity(recorded) != identity(config_to_dict(config)):
    claim(workdir, config, identity=identity)  # Raises, naming the differing keys.
  if not os.path.exists(os.path.join(workdir, CONFIG)):
    write_json(os.path.join(workdir, CONFIG), recorded)
  results = read_json(path)
  lacking = [k for k in keys if not isinstance(results, dict) or k not in results]
  if lacking:
    raise UserInputError(f"{path} lacks {lacking}: it is not the results of a "
                         f"{config.experiment} run; move it away or use another --workdir")
  return results


def diff_keys(a, b, prefix=""):
  if isinstance(a, dict) and isinstance(b, dict):
    for k in set(a) | set(b):
      yield from diff_keys(a.get(k), b.get(k), f"{prefix}{k}.")
  elif a != b:
    yield prefix.rstrip(".")


class MetricsLog:
  """Appends one JSON object per line to `<workdir>/metrics.jsonl`, and its scalars to
  TensorBoard event files that follow it in `<workdir>/tb/`, one TensorBoard run per training
  (`lottery_jax.tensorboard`; `tensorboard --logdir=<workdir>/tb` shows the curves). Opening
  the log rebuilds them from metrics.jsonl (a resumed run), `close` at the end of a run too."""

  def __init__(self, path: str, tensorboard: bool = True):
    self.path = path
    workdir = os.path.dirname(os.path.abspath(path))
    os.makedirs(workdir, exist_ok=True)
    self.events = None
    if tensorboard and parallel.is_writer():
      self.events = tensorboard_lib.Writer(os.path.join(workdir, tensorboard_lib.DIRECTORY),
                                           path, os.path.join(workdir, "config.json"))
      self.events.rebuild()

  def close(self) -> None:
    """Rebuild the event files from metrics.jsonl (the end of a run)."""
    if self.events is not None:
      self.events.close()

  def write(self, **record) -> None:
    """Append `record` (with the time) as one line; process 0 only."""
    if not parallel.is_writer():
      return
    record.setdefault("time", time.time())
    with open(self.path, "a") as f:
      f.write(json.dumps(record, default=_jsonable, sort_keys=True) + "\n")
    if self.events is not None:
      self.events.write(json.loads(json.dumps(record, default=_jsonable)))


def cached(path: str, compute: Callable[[], Any], read: Callable[[str], Any] = read_json,
           write: Callable[[str, Any], None] = write_json, requires: tuple[str, ...] = ()) -> Any:
  """The stage output stored at `path` (`read(path)`), or `compute()`, stored with
  `write(path, value)` (process 0 only) and returned: a stage whose output exists is skipped,
  so a killed run resumes. The stage also counts as undone when a file in `requires` is
  missing (its other outputs, or the records of stages it consumed), so a rerun rebuilds a
  deleted one. Every process takes the same branch (process 0's view, parallel.exists), so all
  make the same jitted calls. Write the file at `path` last when a stage writes several."""
  if all(parallel.exists(p) for p in (path, *requires)):
    return read(path)
  value = compute()
  write(path, value)
  return value
