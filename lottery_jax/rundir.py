"""The run directory: config.json (refusing a different config), metrics.jsonl, results.json.

Files are written atomically (temporary file + rename), so a killed run never leaves half a
result behind, and nothing already written is overwritten by a run that is refused.
"""

import json
import os
import time
from typing import Any

import ml_collections

from lottery_jax.errors import UserInputError


def write_json(path: str, obj: Any) -> None:
  """Write `obj` as indented JSON to `path` atomically."""
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  tmp = f"{path}.tmp{os.getpid()}"
  with open(tmp, "w") as f:
    json.dump(obj, f, indent=2, sort_keys=True, default=_jsonable)
    f.write("\n")
  os.replace(tmp, path)


def read_json(path: str) -> Any:
  with open(path) as f:
    return json.load(f)


def _jsonable(x):
  if hasattr(x, "tolist"):
    return x.tolist()
  if isinstance(x, (set, tuple)):
    return list(x)
  raise TypeError(f"not JSON-serialisable: {type(x).__name__}")


def config_to_dict(config: ml_collections.ConfigDict) -> dict:
  """The config as plain JSON data (tuples become lists)."""
  return json.loads(json.dumps(config.to_dict(), default=_jsonable))


def claim(workdir: str, config: ml_collections.ConfigDict) -> None:
  """Make `workdir` this config's run directory.

  A new or empty directory gets config.json; one holding the same config is resumed; one
  holding a different config is refused with a UserInputError naming the differing keys.
  """
  os.makedirs(workdir, exist_ok=True)
  path = os.path.join(workdir, "config.json")
  wanted = config_to_dict(config)
  if os.path.exists(path):
    try:
      existing = read_json(path)
    except (OSError, ValueError):
      raise UserInputError(f"{path} is unreadable; choose another --workdir") from None
    if existing != wanted:
      diff = sorted(_diff_keys(existing, wanted))
      shown = ", ".join(diff[:5]) + (" ..." if len(diff) > 5 else "")
      raise UserInputError(f"work dir {workdir} holds a run of a different config "
                           f"(differs in {shown}); use another --workdir or the same config")
    return
  write_json(path, wanted)


def finished_results(workdir: str, config: ml_collections.ConfigDict):
  """results.json of a finished run of `config` in `workdir` (refusing a different config
  there, as `claim`), or None when the run has not finished."""
  path = os.path.join(workdir, "results.json")
  if not os.path.exists(path):
    return None
  claim(workdir, config)
  return read_json(path)


def _diff_keys(a, b, prefix=""):
  if isinstance(a, dict) and isinstance(b, dict):
    for k in set(a) | set(b):
      yield from _diff_keys(a.get(k), b.get(k), f"{prefix}{k}.")
  elif a != b:
    yield prefix.rstrip(".")


class MetricsLog:
  """Appends one JSON object per line to `<workdir>/metrics.jsonl`."""

  def __init__(self, path: str):
    self.path = path
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)

  def write(self, **record) -> None:
    record.setdefault("time", time.time())
    with open(self.path, "a") as f:
      f.write(json.dumps(record, default=_jsonable, sort_keys=True) + "\n")
