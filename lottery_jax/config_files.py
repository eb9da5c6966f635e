"""Config files are loaded by path (ml_collections' config_flags), not imported as a package, so
one that builds on a sibling file (configs/presets.py) loads it by path too."""

import importlib.util
import pathlib
import sys
import types


def load_beside(config_file: str, filename: str) -> types.ModuleType:
  """The module in `filename`, in the folder of `config_file` (pass `__file__`), loaded by path.

  Loaded once per resolved path; a missing file raises FileNotFoundError naming it.
  """
  path = pathlib.Path(config_file).resolve().with_name(filename)
  name = f"lottery_jax_config_file_{abs(hash(str(path))):x}"
  if name in sys.modules:
    return sys.modules[name]
  if not path.is_file():
    raise FileNotFoundError(f"{path} (loaded beside {config_file})")
  spec = importlib.util.spec_from_file_location(name, path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  sys.modules[name] = module
  return module
