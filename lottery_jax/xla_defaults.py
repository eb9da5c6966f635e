"""XLA:CPU defaults for this codebase, set in XLA_FLAGS before jax initialises its backend.

`python -m lottery_jax.main` calls `apply()` first thing; tests, bench scripts and a plain
`import lottery_jax` do not go through main, so they get jax's own defaults unless they call
`apply()` themselves before the first jax computation (bench/train_step.py does). A flag the
user already sets in XLA_FLAGS wins: only flags absent from it are added. The flags only affect
the CPU backend's compiler, so they are harmless on accelerators.
"""

import os

# flag -> value. Measured in bench/README.md ("Train step"): jaxlib 0.10's YNN library fusions
# (its defaults: individual_convolution, reduce, individual_dot) make the ConvNet-3 train step
# slower on CPU, above all the convolutions' weight gradients; with all three off XLA:CPU uses
# its Eigen convolutions, dots and its own reduction loops.
CPU_FLAGS = {
    "xla_cpu_experimental_ynn_fusion_type": "-individual_convolution,-reduce,-individual_dot",
}


def apply(environ=None) -> str:
  """Adds CPU_FLAGS missing from environ['XLA_FLAGS'] (default os.environ); returns the result.

  Has no effect on a jax backend that is already initialised (XLA reads the flags once).
  """
  environ = os.environ if environ is None else environ
  current = environ.get("XLA_FLAGS", "")
  present = {token.lstrip("-").split("=", 1)[0] for token in current.split()}
  added = [f"--{flag}={value}" for flag, value in CPU_FLAGS.items() if flag not in present]
  if added:
    environ["XLA_FLAGS"] = " ".join([current.strip(), *added]).strip()
  return environ.get("XLA_FLAGS", "")
