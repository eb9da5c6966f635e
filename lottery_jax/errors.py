"""The one exception type for bad user input.

Anything raised as `UserInputError` reaches the command line as a single line naming the
problem and the valid choices, with exit status 2 and no traceback (see `lottery_jax.main`).
"""


class UserInputError(ValueError):
  """Bad input from the user: unknown name, missing/corrupt file, out-of-range value."""


def unknown_choice(what: str, got, valid) -> UserInputError:
  """An error for `got` not being one of `valid`, listing the valid choices."""
  choices = ", ".join(repr(v) for v in sorted(valid))
  return UserInputError(f"unknown {what} {got!r}; valid choices: {choices}")


class TrainingDiverged(RuntimeError):
  """The loss, gradients or parameters became NaN or Inf; the message names the stage, the
  step, the quantity and the last good checkpoint (exit status 3 on the command line)."""
