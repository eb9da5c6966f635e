"""The terminal progress bar of the host loop (the one module that imports tqdm)."""

import sys

from tqdm import tqdm


def bar(total: int, initial: int, desc: str, show: bool = True) -> tqdm:
  """A progress bar on stderr from `initial` to `total` steps that disappears when closed.

  show=False hides it; otherwise it shows only when stderr is a terminal (tqdm's
  disable=None), so logs and pipes get the host loop's log lines instead."""
  return tqdm(total=total, initial=initial, desc=desc, dynamic_ncols=True, leave=False,
              disable=None if show else True, file=sys.stderr)
