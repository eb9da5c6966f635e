"""Paper Fig. 4: linear mode connectivity of synthetic and IMP subnetworks of ResNet-10 on
ImageNet-10. Paper scale only (an accelerator and ImageNet); it cannot run on this machine.

    python -m experiments.fig4 --preset=paper --data_imagenet10=PATH

Data path. ImageNet-10 is the first 10 classes of IDC's ImageNet-100 list (Kim et al. 2022,
class100.txt of snu-mllab/Efficient-Dataset-Condensation, which follows CMC's imagenet100.txt):
n02869837 n01749939 n02488291 n02107142 n13037406 n02091831 n04517823 n04589890 n03062245
n01773797. Prepare TFDS `imagenet2012` (manual download of the ILSVRC2012 archives into the
TFDS manual dir, then `tfds build imagenet2012`), and export those 10 classes, resized to
224 x 224 (shorter side 256, centre crop 224, as IDC's test transform), into the class-folder
layout `<root>/{train,test}/<wnid>/<image>` (train: 1,300 images per class; test: the 50
validation images per class). Pass that folder (or a .tar.gz of it) as --data_imagenet10; the
lottery run reads it like the CIFAR-10 archive. The distilled set is IDC's published
ImageNet-10 set (10 images per class), converted to our .npz format
(lottery_jax.data.distilled_npz) and named by `--config.distilled.source` in
configs/imagenet10_resnet10.py. Without it the config uses a class-balanced random real subset.
"""

import sys

from experiments import cli, fig3, page
from experiments import runs as runs_lib

NAME = "fig4"
TITLE = "Fig. 4: linear mode connectivity, synthetic against IMP subnetworks (ImageNet-10)"
CLAIM = ("On ResNet-10 / ImageNet-10 the dense network is unstable to the data order, IMP's "
         "subnetworks show loss barriers along the interpolation path, and the subnetworks "
         "found with distilled data are linearly connected.")


def refuse(preset: str) -> str | None:
  if preset != "paper":
    return ("fig4 is paper scale only (ResNet-10 on 224 px ImageNet-10 needs an accelerator "
            "and ImageNet); use --preset=paper with --data_imagenet10 (see experiments/fig4.py)")
  return None


def runs(preset: str) -> dict[str, runs_lib.RunSpec]:
  return {"main": runs_lib.IN10_RESNET10[preset]}


def draw(loaded: dict[str, runs_lib.Run], out_dir: str) -> page.Drawn:
  return fig3.draw_lmc(loaded["main"], out_dir, "fig4")


if __name__ == "__main__":
  cli.main(sys.modules[__name__])
