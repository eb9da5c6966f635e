"""lottery_jax.xla_defaults: CPU flags are added to XLA_FLAGS, never over the user's own."""

from lottery_jax import xla_defaults


def _expected_defaults() -> list[str]:
  return [f"--{flag}={value}" for flag, value in xla_defaults.CPU_FLAGS.items()]


def test_adds_every_default_to_an_empty_environment():
  environ = {}
  result = xla_defaults.apply(environ)
  assert result == environ["XLA_FLAGS"] == " ".join(_expected_defaults())


def test_keeps_unrelated_user_flags_first():
  environ = {"XLA_FLAGS": "--xla_force_host_platform_device_count=4"}
  xla_defaults.apply(environ)
  assert environ["XLA_FLAGS"].split() == [
      "--xla_force_host_platform_device_count=4", *_expected_defaults()]


def test_the_users_value_wins():
  for flag in xla_defaults.CPU_FLAGS:
    user = f"--{flag}=user_value"
    environ = {"XLA_FLAGS": user}
    xla_defaults.apply(environ)
    tokens = environ["XLA_FLAGS"].split()
    assert user in tokens
    assert not [t for t in tokens if t.startswith(f"--{flag}=") and t != user]


def test_applying_twice_changes_nothing():
  environ = {}
  once = xla_defaults.apply(environ)
  assert xla_defaults.apply(environ) == once


def test_an_old_jaxlib_gets_no_flag_it_would_abort_on():
  environ = {"XLA_FLAGS": "--xla_force_host_platform_device_count=4"}
  assert xla_defaults.apply(environ, jaxlib_version=(0, 4)) == (
      "--xla_force_host_platform_device_count=4")
  assert xla_defaults.apply({}, jaxlib_version=(0, 10)) == " ".join(_expected_defaults())
