"""ConvNet-3 on CIFAR-10 with the distilled-pruning authors' real-data recipe.

    python -m lottery_jax.main --config=configs/cifar10_convnet.py --workdir=runs/c10

reads CIFAR-10 from TFDS; on a machine without TFDS downloads, point it at the class-folder
archive instead:

    python -m lottery_jax.main --config=configs/cifar10_convnet.py \
        --config.data.source=../shared/data/cifar10-jpeg.tar.gz --workdir=runs/c10

Recipe: Adam, lr 8e-4, L2 weight decay 8e-4, batch 256, 100 epochs with the learning rate
multiplied by 0.15 at epochs 50, 65 and 80, mean/std normalisation, random crop (pad 4) and
flip. Full run: 19,500 steps; expect about 86-88% test accuracy for dense ConvNet-3 (about
10 minutes on one modern GPU; hours on a CPU). Smoke run on a CPU:
`--config.train.num_steps=100` (about 2-3 minutes, ~35% accuracy).
"""

from lottery_jax import default_config


def get_config():
  c = default_config.base()
  c.data.source = "cifar10"
  c.data.crop_padding = 4
  c.data.flip = True
  c.train.optimizer = "adam"
  c.train.learning_rate = 8e-4
  c.train.weight_decay = 8e-4
  c.train.schedule = "step"
  c.train.decay_at = (0.5, 0.65, 0.8)
  c.train.epochs = 100.0
  c.train.batch_size = 256
  c.train.log_every = 100
  c.train.checkpoint_every = 1000
  c.lock()
  return c
