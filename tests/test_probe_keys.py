"""Named probe streams: each analysis, replicate and round gets its own key."""

import itertools

import jax
import ml_collections
import numpy as np
import pytest

from lottery_jax.stability import probe_keys

SEEDS = ml_collections.ConfigDict({"probes": 7})


def test_key_is_the_documented_fold_in_chain():
  expected = jax.random.fold_in(jax.random.fold_in(jax.random.fold_in(
      jax.random.key(7), 1), probe_keys.HESSIAN), 3)
  got = probe_keys.key(SEEDS, 1, probe_keys.HESSIAN, 3)
  np.testing.assert_array_equal(jax.random.key_data(got), jax.random.key_data(expected))


def test_streams_replicates_and_rounds_never_share_a_key():
  keys = [tuple(np.asarray(jax.random.key_data(probe_keys.key(SEEDS, rep, stream, r))).tolist())
          for rep, stream, r in itertools.product(range(2), probe_keys.STREAMS.values(),
                                                  (0, 1, 2, 999, 1000, 1001))]
  assert len(set(keys)) == len(keys)


def test_unknown_stream_is_refused():
  with pytest.raises(ValueError, match="unknown probe stream 5"):
    probe_keys.key(SEEDS, 0, 5, 0)
