"""Orbax checkpoints of a TrainState: save every N steps, restore the latest, clear errors
for corrupt checkpoints."""

import errno
import json
import os
import sys
import zipfile

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp

from lottery_jax import atomic
from lottery_jax import parallel
from lottery_jax.errors import UserInputError
from lottery_jax.masks import path_name


def manager(directory: str, max_to_keep: int = 2) -> ocp.CheckpointManager:
  """A CheckpointManager over `directory` (created if missing) keeping the newest few."""
  # cleanup_tmp_directories: a save cut short (kill, Ctrl-C, disk full) leaves a temporary
  # directory that the next run removes instead of tripping over.
  options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True,
                                         enable_async_checkpointing=False,
                                         cleanup_tmp_directories=True)
  return ocp.CheckpointManager(os.path.abspath(directory), options=options)


def save(mngr: ocp.CheckpointManager, step: int, state) -> None:
  """Save `state` as checkpoint `step` and wait until it is on disk.

  A failed write (disk full, permissions) is an OSError naming the checkpoint directory,
  whatever type orbax raised it as; the earlier checkpoints stay as they were.
  """
  _quiet_closed_loops()
  try:
    mngr.save(step, args=ocp.args.StandardSave(state))
    mngr.wait_until_finished()
  except OSError:
    raise
  except Exception as e:  # Orbax/TensorStore wrap I/O errors in several types.
    text = " ".join(str(e).split())
    where = os.path.join(str(mngr.directory), str(step))
    if "RESOURCE_EXHAUSTED" in text or "No space left" in text or "ENOSPC" in text:
      raise OSError(errno.ENOSPC, "No space left on device", where) from None
    if "PERMISSION_DENIED" in text or "Permission denied" in text:
      raise OSError(errno.EACCES, "Permission denied", where) from None
    raise


def _quiet_closed_loops() -> None:
  """Once per process: sys.excepthook stops reporting RuntimeError('Event loop is closed'),
  which TensorStore's callbacks raise (and print) after a failed write's event loop has
  closed, around the error that write raised; every other report goes through."""
  hook = sys.excepthook
  if getattr(hook, "quiet_closed_loops", False):
    return

  def quiet(kind, value, tb):
    if not (kind is RuntimeError and str(value) == "Event loop is closed"):
      hook(kind, value, tb)

  quiet.quiet_closed_loops = True
  sys.excepthook = quiet


def restore_latest(mngr: ocp.CheckpointManager, like_state):
  """(state, step) from the newest checkpoint, or (None, None) if there is none.

  `like_state` gives the structure, shapes, dtypes and shardings. A checkpoint that cannot be
  read is a UserInputError naming it (it is never deleted). Each array comes back placed like
  its `like_state` leaf (same sharding, or uncommitted), so a jitted step reuses its
  compilation after a resume.
  """
  step = mngr.latest_step()
  if step is None:
    return None, None
  abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, like_state)
  try:
    state = mngr.restore(step, args=ocp.args.StandardRestore(abstract))
  except Exception as e:  # Orbax raises many types for unreadable files.
    where = os.path.join(str(mngr.directory), str(step))
    if _holds_train_state_masks(where):
      raise UserInputError(f"checkpoint {where} is of an older format (TrainState.masks, now "
                           "held only by the optimizer state); move it away to start that "
                           "stage over") from None
    first_line = _reason(e)
    raise UserInputError(f"checkpoint {where} is corrupt or does not match this config "
                         f"({first_line}); move it away to start that stage over") from None
  return jax.tree.map(_placed_like, state, like_state), step


def _holds_train_state_masks(where: str) -> bool:
  """Whether the checkpoint at `where` has a top-level `masks` entry beside `opt_state`: a
  TrainState from before the masks lived only in the optimizer state (masks.MaskedState)."""
  try:
    with open(os.path.join(where, "default", "_METADATA")) as f:
      keys = json.load(f)["tree_metadata"].keys()
  except (OSError, ValueError, KeyError, AttributeError):
    return False
  return any(k.startswith("('masks',") for k in keys) and any(
      k.startswith("('opt_state',") for k in keys)


def _reason(e: BaseException) -> str:
  """A short reason for a failed restore: the first line of the message, without the object
  reprs (`<bound method ...>`) some orbax and TensorStore errors carry."""
  import re
  text = str(e).strip().splitlines()[0] if str(e).strip() else ""
  drop = r"<[^<>]*(?:0x[0-9a-f]+|object|method|function)[^<>]*>"
  while re.search(drop, text):  # Innermost first: reprs nest (`<bound method X of <Y>>`).
    text = re.sub(drop, "", text)
  text = " ".join(text.replace("()", " ").split()).strip(" :,;")
  return text[:200] or type(e).__name__


def _placed_like(restored, like):
  """`restored` with `like`'s placement. Orbax returns arrays committed to one device, and
  jit keys its cache on sharding and commitment."""
  if not isinstance(like, jax.Array):
    return restored
  if like.committed:
    return jax.device_put(restored, like.sharding)
  return jnp.asarray(np.asarray(restored))


def save_npz_tree(path: str, tree) -> None:
  """Save a pytree of arrays (a mask, say) as an .npz keyed by 'Conv_0/kernel'-style paths,
  atomically; readable with plain numpy. Process 0 only (see parallel.is_writer)."""
  if not parallel.is_writer():
    return
  flat = {path_name(p): np.asarray(x) for p, x in jax.tree_util.tree_leaves_with_path(tree)}
  atomic.write_npz(path, **flat)


def load_npz_tree(path: str, like_tree):
  """Load an .npz written by save_npz_tree into the structure of `like_tree`."""
  try:
    with np.load(path) as f:
      leaves = []
      for p, like in jax.tree_util.tree_leaves_with_path(like_tree):
        arr = f[path_name(p)]
        if arr.shape != np.shape(like):
          raise ValueError(f"{path_name(p)} has shape {arr.shape}, expected {np.shape(like)}")
        leaves.append(jax.numpy.asarray(arr))
  except (OSError, KeyError, ValueError, zipfile.BadZipFile) as e:
    raise UserInputError(f"{path} is corrupt or does not match this model "
                         f"({str(e).splitlines()[0] if str(e) else type(e).__name__}); "
                         "move it away to recompute it") from None
  return jax.tree.unflatten(jax.tree.structure(like_tree), leaves)
