"""The masks have one home, the optimizer state; checkpoints of the older TrainState (with its
own copy of the masks) are refused in one line."""

import dataclasses
from typing import Any

import flax
import jax.numpy as jnp
import optax
import pytest

from lottery_jax import checkpoint, masks as masks_lib, train
from lottery_jax.errors import UserInputError


@flax.struct.dataclass
class _OldTrainState:  # TrainState before the masks lived only in opt_state.
  step: Any
  params: Any
  batch_stats: Any
  opt_state: Any
  masks: Any


def _state():
  params = {"Dense_0": {"kernel": jnp.ones((3, 2)), "bias": jnp.zeros(2)}}
  masks = masks_lib.init_masks(params)
  return train.new_state(params, {}, masks, optax.sgd(0.1, momentum=0.9)), masks


def test_the_masks_live_only_in_the_optimizer_state():
  state, masks = _state()
  assert [f.name for f in dataclasses.fields(state)] == [
      "step", "params", "batch_stats", "opt_state"]
  assert isinstance(state.opt_state, masks_lib.MaskedState)
  assert state.masks is state.opt_state.masks


def test_a_checkpoint_of_the_older_train_state_is_refused_in_one_line(tmp_path):
  state, masks = _state()
  old = _OldTrainState(state.step, state.params, state.batch_stats, state.opt_state, masks)
  checkpoint.save(checkpoint.manager(str(tmp_path)), 5, old)
  with pytest.raises(UserInputError, match=r"^checkpoint .*/5 is of an older format "
                                           r"\(TrainState.masks.*move it away") as e:
    checkpoint.restore_latest(checkpoint.manager(str(tmp_path)), state)
  assert "\n" not in str(e.value)
