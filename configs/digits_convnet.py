"""ConvNet-3 on the bundled scikit-learn digits (the quickstart; a few minutes on a CPU).

    python -m lottery_jax.main --config=configs/digits_convnet.py --workdir=runs/digits

prints the digits test accuracy (about 99.5%).
"""

from lottery_jax import default_config


def get_config():
  return default_config.get_config()
