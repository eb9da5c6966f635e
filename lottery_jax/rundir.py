"""The run directory: config.json (refusing a different config), inputs.json (refusing changed
input files), a lock (refusing a second process), metrics.jsonl, results.json.

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


_LOCKS: dict[str, int] = {}  # Absolute work dir -> file descriptor holding its lock.


def lock(workdir: str) -> None:
  """Hold `<workdir>/lock` (fcntl.flock) until this process exits; a UserInputError naming
  the holder (pid, host) when another live process holds it. The kernel drops the lock of a
  process that dies, so a stale lock file is simply taken over."""
  key = os.path.abspath(workdir)
  if key in _LOCKS:
    return
  os.makedirs(workdir, exist_ok=True)
  path = os.path.join(workdir, "lock")
  fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
  try:
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
  except BlockingIOError:
    holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
    os.close(fd)
    raise UserInputError(f"work dir {workdir} is in use by {holder}; wait for that run to end "
                         "or use another --workdir") from None
  os.ftruncate(fd, 0)
  os.pwrite(fd, f"pid {os.getpid()} on host {socket.gethostname()}\n".encode(), 0)
  _LOCKS[key] = fd


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
  config.json stays as first written; one holding a config of another identity is refused
  with a UserInputError naming the differing keys.
  `inputs` ({name: content hash}) are recorded in inputs.json on the first claim; a resume
  whose inputs differ is refused. The lock (see `lock`) is taken only once the directory is
  known to be this config's, so a refused run changes nothing.
  """
  path = os.path.join(workdir, "config.json")
  wanted = config_to_dict(config)
  if os.path.exists(path):
    existing = identity(read_json(path))
    if existing != identity(wanted):
      diff = sorted(diff_keys(existing, identity(wanted)))
      shown = ", ".join(diff[:5]) + (" ..." if len(diff) > 5 else "")
      raise UserInputError(f"work dir {workdir} holds a run of a different config "
                           f"(differs in {shown}); use another --workdir or the same config")
  lock(workdir)
  if inputs is not None:
    _pin_inputs(workdir, inputs)
  if not os.path.exists(path):
    write_json(path, wanted)


def _pin_inputs(workdir: str, inputs: dict) -> None:
  path = os.path.join(workdir, "inputs.json")
  if not os.path.exists(path):
    write_json(path, inputs)
    return
  pinned = read_json(path)
  for name in sorted(set(pinned) | set(inputs)):
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


def _is_hash(value) -> bool:
  return isinstance(value, str) and all(c in "0123456789abcdef" for c in value)


def finished_results(workdir: str, config: ml_collections.ConfigDict,
                     identity: Callable[[dict], dict] = whole, keys: tuple[str, ...] = ()):
  """results.json of a finished run of `config` in `workdir` (refusing a config of another
  identity there, as `claim`, and a results.json without config.json or without the top-level
  `keys` its experiment writes), or None when the run has not finished."""
  path = os.path.join(workdir, "results.json")
  if not parallel.exists(path):
    return None
  config_path = os.path.join(workdir, "config.json")
  if not os.path.exists(config_path):
    raise UserInputError(f"work dir {workdir} holds a results.json but no config.json, so it "
                         "is not a run of this config; use another --workdir")
  if identity(read_json(config_path)) != identity(config_to_dict(config)):
    claim(workdir, config, identity=identity)  # Raises, naming the differing keys.
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
  TensorBoard event files in the same directory (`lottery_jax.tensorboard`; `tensorboard
  --logdir=<workdir>` shows the training curves)."""

  def __init__(self, path: str, tensorboard: bool = True):
    self.path = path
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    self.events = (tensorboard_lib.Writer(os.path.dirname(os.path.abspath(path)))
                   if tensorboard else None)

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
           write: Callable[[str, Any], None] = write_json) -> Any:
  """The stage output stored at `path` (`read(path)`), or `compute()`, stored with
  `write(path, value)` (process 0 only) and returned: a stage whose output exists is skipped,
  so a killed run resumes. Every process takes the same branch (process 0's view of `path`,
  parallel.exists), so all make the same jitted calls. Write the file at `path` last when a
  stage writes several."""
  if parallel.exists(path):
    return read(path)
  value = compute()
  write(path, value)
  return value
