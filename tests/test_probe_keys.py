"""Named probe streams: each analysis, replicate and round gets its own key, and the keys are
the ones runs used before the streams had names (fold_in(., r) and fold_in(., 1000 + r))."""

import itertools

import jax
import ml_collections
import numpy as np
import pytest

from lottery_jax.stability import probe_keys

SEEDS = ml_collections.ConfigDict({"probes": 7})


def _data(k):
  return np.asarray(jax.random.key_data(k))


def test_keys_are_the_documented_fold_in_chain_with_the_earlier_offsets():
  replicate_key = jax.random.fold_in(jax.random.key(7), 1)
  np.testing.assert_array_equal(_data(probe_keys.key(SEEDS, 1, probe_keys.HESSIAN, 3)),
                                _data(jax.random.fold_in(replicate_key, 1003)))
  np.testing.assert_array_equal(_data(probe_keys.key(7, 1, probe_keys.LANDSCAPE, 3)),
                                _data(jax.random.fold_in(replicate_key, 3)))


def test_streams_replicates_and_rounds_never_share_a_key():
  keys = [tuple(_data(probe_keys.key(SEEDS, rep, stream, r)).tolist())
          for rep, stream, r in itertools.product(range(2), probe_keys.OFFSETS, (0, 1, 2, 999))]
  assert len(set(keys)) == len(keys)


def test_unknown_stream_and_out_of_range_round_are_refused():
  with pytest.raises(ValueError, match="unknown probe stream 'probes'"):
    probe_keys.key(SEEDS, 0, "probes", 0)
  with pytest.raises(ValueError, match="round 1000 is outside 0..999"):
    probe_keys.key(SEEDS, 0, probe_keys.HESSIAN, 1000)
