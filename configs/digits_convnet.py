"""ConvNet-3 on the bundled scikit-learn digits (the quickstart; a few minutes on a CPU).

    python -m lottery_jax.main --config=configs/digits_convnet.py --workdir=runs/digits

distils the digits with DM in the run (10 images per class, shown in the report), then prints
the test accuracy of the dense network (about 98%, width 32) and of every producer's masks
down to 89% sparsity; see default_config.get_config for the settings.
`--config.distilled.source=random_subset` prunes with a random real subset instead (no
distillation). Variants (configs/presets.py): `:smoke` (one round of each producer, 20 steps),
`:rewind` (IMP with weight rewinding only).
"""

import importlib.util
import pathlib

from lottery_jax import default_config

# configs/presets.py, beside this file (config files are loaded by path, not as a package).
_SPEC = importlib.util.spec_from_file_location(
    "lottery_jax_configs_presets", pathlib.Path(__file__).with_name("presets.py"))
presets = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(presets)

_VARIANTS = {k: presets.LOTTERY_VARIANTS[k] for k in ("smoke", "rewind")}


def get_config(arg=None):
  return presets.variant(default_config.get_config(), arg, _VARIANTS)
