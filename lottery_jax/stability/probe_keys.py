"""Keys of the stability analyses' random vectors: the `probes` seed, folded with the
replicate, then with the analysis's named offset plus the round, so no two analyses (nor two
rounds) share a draw:

  key = probe_keys.key(config.seeds.probes, replicate, probe_keys.HESSIAN, r)
      # fold_in(fold_in(key(seeds.probes), replicate), OFFSETS[HESSIAN] + r)

The offsets (landscape 0, Hessian 1,000) are the values the code used before they had names,
so runs made earlier (and the results committed under experiments/results/) are reproduced
bit for bit; sharpness (2,000) came later. Rounds must stay below ROUND_LIMIT for the
streams to stay apart.
"""

import jax

LANDSCAPE = "landscape"  # The random plane directions of a loss landscape.
HESSIAN = "hessian"  # Hutchinson's Rademacher probes.
SHARPNESS = "sharpness"  # Lanczos start vectors and the spectral density's probes.
OFFSETS = {LANDSCAPE: 0, HESSIAN: 1000, SHARPNESS: 2000}
ROUND_LIMIT = 1000


def key(probes_seed, replicate: int, stream: str, round_: int) -> jax.Array:
  """The key of analysis `stream` (LANDSCAPE, HESSIAN or SHARPNESS) at round `round_` of
  `replicate`; `probes_seed` is config.seeds.probes (or the seeds block itself)."""
  if stream not in OFFSETS:
    raise ValueError(f"unknown probe stream {stream!r}; streams: {sorted(OFFSETS)}")
  if not 0 <= round_ < ROUND_LIMIT:
    raise ValueError(f"round {round_} is outside 0..{ROUND_LIMIT - 1}, where probe streams "
                     "stay apart")
  seed = probes_seed.probes if hasattr(probes_seed, "probes") else probes_seed
  replicate_key = jax.random.fold_in(jax.random.key(seed), replicate)
  return jax.random.fold_in(replicate_key, OFFSETS[stream] + round_)
