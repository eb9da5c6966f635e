"""ConvNet-3 on the bundled scikit-learn digits (the quickstart; a few minutes on a CPU).

    python -m lottery_jax.main --config=configs/digits_convnet.py --workdir=runs/digits

distils the digits with DM in the run (10 images per class, shown in the report), then prints
the test accuracy of the dense network (about 98%, width 32) and of every producer's masks
down to 89% sparsity; see default_config.get_config for the settings.
`--config.distilled.source=random_subset` prunes with a random real subset instead (no
distillation).
"""

from lottery_jax import default_config


def get_config():
  return default_config.get_config()
