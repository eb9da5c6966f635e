"""XLA:CPU defaults for this codebase, set in XLA_FLAGS before jax initialises its backend.

`python -m lottery_jax.main` calls `apply()` first thing; tests, bench scripts and a plain
`import lottery_jax` do not go through main, so they get jax's own defaults unless they call
`apply()` themselves before the first jax computation (bench/train_step.py does). A flag the
user already sets in XLA_FLAGS wins: only flags absent from it are added. The flags only affect
the CPU backend's compiler, so they are harmless on accelerators.
"""

import importlib.metadata
import os
import re

# flag -> value. Measured in bench/README.md ("Train step"): jaxlib 0.10's YNN library fusions
# (its defaults: individual_convolution, reduce, individual_dot) make the ConvNet-3 train step
# slower on CPU, above all the convolutions' weight gradients; with all three off XLA:CPU uses
# its Eigen convolutions, dots and its own reduction loops.
CPU_FLAGS = {
    "xla_cpu_experimental_ynn_fusion_type": "-individual_convolution,-reduce,-individual_dot",
}


# XLA aborts on a flag it does not know; the YNN fusion flag exists from jaxlib 0.10 on.
MIN_JAXLIB = (0, 10)


def _jaxlib_version() -> tuple[int, ...]:
  """The installed jaxlib's (major, minor), read without importing jax; (0, 0) if unknown."""
  try:
    text = importlib.metadata.version("jaxlib")
  except importlib.metadata.PackageNotFoundError:
    return (0, 0)
  parts = re.findall(r"\d+", text)[:2]
  return tuple(int(x) for x in parts) if len(parts) == 2 else (0, 0)


def apply(environ=None, jaxlib_version: tuple[int, ...] | None = None) -> str:
  """Adds CPU_FLAGS missing from environ['XLA_FLAGS'] (default os.environ); returns the result.

  Nothing is added for a jaxlib older than MIN_JAXLIB (it would abort on the unknown flag).
  Has no effect on a jax backend that is already initialised (XLA reads the flags once).
  """
  environ = os.environ if environ is None else environ
  if (jaxlib_version or _jaxlib_version()) < MIN_JAXLIB:
    return environ.get("XLA_FLAGS", "")
  current = environ.get("XLA_FLAGS", "")
  present = {token.lstrip("-").split("=", 1)[0] for token in current.split()}
  added = [f"--{flag}={value}" for flag, value in CPU_FLAGS.items() if flag not in present]
  if added:
    environ["XLA_FLAGS"] = " ".join([current.strip(), *added]).strip()
  return environ.get("XLA_FLAGS", "")
