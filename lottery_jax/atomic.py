"""Atomic file writes: readers see the old file or the whole new one, never half of it.

Every file the project writes for later reading (JSON results, masks, landscapes, reports,
caches) goes through `write`: a temporary file beside `path`, then `os.replace`. On any
failure (disk full, Ctrl-C, an error in the writer) the temporary file is removed and `path`
keeps what it held before.
"""

import os
import tempfile
from typing import BinaryIO, Callable

import numpy as np


def write(path: str | os.PathLike, writer: Callable[[BinaryIO], object]) -> None:
  """Call `writer` on a binary file that becomes `path` only once it returns; the parent
  directory is created if needed."""
  path = os.fspath(path)
  parent = os.path.dirname(os.path.abspath(path))
  os.makedirs(parent, exist_ok=True)
  fd, tmp = tempfile.mkstemp(dir=parent, prefix=os.path.basename(path) + ".", suffix=".tmp")
  try:
    with os.fdopen(fd, "wb") as f:
      writer(f)
    os.chmod(tmp, 0o644)  # mkstemp makes the file owner-only.
    os.replace(tmp, path)
  except BaseException as e:
    if os.path.exists(tmp):
      os.remove(tmp)
    if isinstance(e, OSError) and not e.filename:  # A failed write names no file: name it.
      raise OSError(e.errno, e.strerror or str(e), path) from None
    raise


def write_text(path: str | os.PathLike, text: str) -> None:
  """`text` (UTF-8) into `path`, atomically."""
  write(path, lambda f: f.write(text.encode()))


def write_npz(path: str | os.PathLike, **arrays) -> None:
  """`arrays` as an uncompressed .npz at `path` (no suffix added), atomically."""
  write(path, lambda f: np.savez(f, **arrays))


def save_figure(fig, path: str | os.PathLike, dpi: int = 120) -> None:
  """A matplotlib figure as a PNG at `path`, atomically."""
  write(path, lambda f: fig.savefig(f, format="png", dpi=dpi))
