"""ConvNet-3 on the bundled scikit-learn digits (the quickstart; a few minutes on a CPU).

    python -m lottery_jax.main --config=configs/digits_convnet.py --workdir=runs/digits

distils the digits with DM in the run (10 images per class, shown in the report), then prints
the test accuracy of the dense network (about 98%, width 32) and of every producer's masks
down to 89% sparsity; see default_config.get_config for the settings.
`--config.distilled.source=random_subset` prunes with a random real subset instead (no
distillation). Variants (configs/presets.py): `:smoke` (one round of each producer, 20 steps),
`:rewind` (IMP with weight rewinding only).
"""

from lottery_jax import config_files
from lottery_jax import default_config

presets = config_files.load_beside(__file__, "presets.py")  # configs/presets.py

_VARIANTS = {k: presets.LOTTERY_VARIANTS[k] for k in ("smoke", "rewind")}


def get_config(arg=None):
  return presets.variant(default_config.get_config(), arg, _VARIANTS)
