"""Keys of the stability analyses' random vectors: the `probes` seed split into one named
stream per analysis, then by replicate and round, so no two analyses share a draw.

  key = probe_keys.key(config.seeds, replicate, probe_keys.HESSIAN, r)
      # fold_in(fold_in(fold_in(key(seeds.probes), replicate), HESSIAN), r)
"""

import jax

LANDSCAPE = 0  # The random plane directions of a loss landscape.
HESSIAN = 1  # Hutchinson's Rademacher probes.
STREAMS = {"landscape": LANDSCAPE, "hessian": HESSIAN}


def key(seeds, replicate: int, stream: int, round_: int) -> jax.Array:
  """The key of analysis `stream` (LANDSCAPE or HESSIAN) at round `round_` of `replicate`."""
  if stream not in STREAMS.values():
    raise ValueError(f"unknown probe stream {stream}; streams: {STREAMS}")
  replicate_key = jax.random.fold_in(jax.random.key(seeds.probes), replicate)
  return jax.random.fold_in(jax.random.fold_in(replicate_key, stream), round_)
