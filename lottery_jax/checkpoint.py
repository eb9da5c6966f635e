"""Orbax checkpoints of a TrainState: save every N steps, restore the latest, clear errors
for corrupt checkpoints."""

import os

import jax
import orbax.checkpoint as ocp

from lottery_jax.errors import UserInputError


def manager(directory: str, max_to_keep: int = 2) -> ocp.CheckpointManager:
  """A CheckpointManager over `directory` (created if missing) keeping the newest few."""
  options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True,
                                         enable_async_checkpointing=False)
  return ocp.CheckpointManager(os.path.abspath(directory), options=options)


def save(mngr: ocp.CheckpointManager, step: int, state) -> None:
  """Save `state` as checkpoint `step` and wait until it is on disk."""
  mngr.save(step, args=ocp.args.StandardSave(state))
  mngr.wait_until_finished()


def restore_latest(mngr: ocp.CheckpointManager, like_state):
  """(state, step) from the newest checkpoint, or (None, None) if there is none.

  `like_state` gives the structure, shapes, dtypes and shardings. A checkpoint that cannot be
  read is a UserInputError naming it (it is never deleted).
  """
  step = mngr.latest_step()
  if step is None:
    return None, None
  abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, like_state)
  try:
    state = mngr.restore(step, args=ocp.args.StandardRestore(abstract))
  except Exception as e:  # Orbax raises many types for unreadable files.
    where = os.path.join(str(mngr.directory), str(step))
    first_line = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
    raise UserInputError(f"checkpoint {where} is corrupt or does not match this config "
                         f"({first_line}); move it away to start that stage over") from None
  return state, step


def save_tree(path: str, tree) -> None:
  """Save a standalone pytree (a mask, a rewind point) to `path` atomically."""
  ckptr = ocp.StandardCheckpointer()
  ckptr.save(os.path.abspath(path), tree)
  ckptr.wait_until_finished()


def load_tree(path: str, like_tree=None):
  """Load a pytree saved with `save_tree`; `like_tree` (optional) gives structure and dtypes."""
  ckptr = ocp.StandardCheckpointer()
  try:
    if like_tree is None:
      return ckptr.restore(os.path.abspath(path))
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, like_tree)
    return ckptr.restore(os.path.abspath(path), abstract)
  except Exception as e:
    first_line = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
    raise UserInputError(f"saved tree {path} is corrupt or does not match ({first_line}); "
                         "move it away to recompute it") from None
