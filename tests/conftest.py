"""Test-session set-up: the XLA:CPU defaults of `lottery_jax.main`, applied before any test
module can start the JAX backend, so in-process runs and the subprocess runs some tests
compare them with (kill-and-resume, CLI) compile with the same flags whatever the order in
which test modules are collected."""

from lottery_jax import xla_defaults

xla_defaults.apply()
