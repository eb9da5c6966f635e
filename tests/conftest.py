"""Test-session set-up: the XLA:CPU defaults of `lottery_jax.main`, applied before any test
module can start the JAX backend, so in-process runs and the subprocess runs some tests
compare them with (kill-and-resume, CLI) compile with the same flags whatever the order in
which test modules are collected.

It also turns on JAX's persistent compilation cache for the session, its worker processes and
the runs they start as subprocesses (they inherit the environment): the tests compile the same
tiny programs over and over, in many processes, and compiling is most of a tiny run's time. A
cached program is the same executable, so no result changes. Set JAX_COMPILATION_CACHE_DIR to
use another directory."""

import os
import tempfile

from lottery_jax import xla_defaults

xla_defaults.apply()
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR",
                      os.path.join(tempfile.gettempdir(), f"lottery_jax_tests_xla_{os.getuid()}"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "-1")
