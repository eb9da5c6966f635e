"""Write a TFDS image dataset as the class-folder archive the experiments read:

    python -m lottery_jax.data.export --name=cifar10 --out=data/cifar10-jpeg.tar.gz
    python -m experiments.fig2 --preset=cpu --data=data/cifar10-jpeg.tar.gz ...

The archive holds `<split>/<class name>/<index>.<jpg|png>` (splits 'train' and 'test'), the
layout `data.image_folder` loads. TFDS downloads the dataset on first use (needs the `tfds`
extra: pip install -e '.[tfds]'); `--data_dir` is TFDS's own. `--format=jpeg` (quality 95,
the layout of the committed CIFAR-10 copy, ../shared/data/cifar10-jpeg.tar.gz; its pixels are
close to, not equal to, the originals) or `png` (lossless).
"""

import argparse
import io
import sys
import tarfile
from typing import Iterable

import numpy as np

from lottery_jax import atomic
from lottery_jax.errors import UserInputError

FORMATS = {"jpeg": ("jpg", "JPEG", {"quality": 95}), "png": ("png", "PNG", {})}


def _encode(image_HxWxC: np.ndarray, fmt: str) -> bytes:
  from PIL import Image
  _, pil_format, options = FORMATS[fmt]
  array = np.asarray(image_HxWxC, np.uint8)
  image = Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array)
  out = io.BytesIO()
  image.save(out, format=pil_format, **options)
  return out.getvalue()


def write_archive(splits: dict[str, Iterable[tuple[np.ndarray, int]]],
                  class_names: list[str], out: str, fmt: str = "jpeg") -> int:
  """Write {split: (uint8 HxWxC image, label) pairs} as `out`, a .tar.gz of
  `<split>/<class>/<index>.<ext>`, atomically; returns the number of images."""
  if fmt not in FORMATS:
    raise UserInputError(f"unknown image format {fmt!r}; valid choices: "
                         + ", ".join(repr(f) for f in FORMATS))
  if not out.endswith((".tar.gz", ".tgz")):
    raise UserInputError(f"--out must end in .tar.gz or .tgz, got {out!r}")
  ext = FORMATS[fmt][0]
  count = [0]

  def writer(f):
    with tarfile.open(fileobj=f, mode="w:gz") as tar:
      for split, examples in splits.items():
        for i, (image, label) in enumerate(examples):
          data = _encode(image, fmt)
          info = tarfile.TarInfo(f"{split}/{class_names[int(label)]}/{i:06d}.{ext}")
          info.size = len(data)
          tar.addfile(info, io.BytesIO(data))
          count[0] += 1

  atomic.write(out, writer)
  return count[0]


def _tfds_examples(name: str, split: str, data_dir: str | None):
  import tensorflow_datasets as tfds
  ds = tfds.load(name, split=split, as_supervised=True, data_dir=data_dir or None)
  return tfds.as_numpy(ds)


def main(argv=None) -> None:
  p = argparse.ArgumentParser(prog="lottery_jax.data.export", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--name", default="cifar10", help="TFDS dataset name (default cifar10)")
  p.add_argument("--out", required=True, help="the .tar.gz to write")
  p.add_argument("--format", default="jpeg", choices=tuple(FORMATS))
  p.add_argument("--data_dir", default=None, help="TFDS data_dir (default TFDS's)")
  args = p.parse_args(argv)
  try:
    import tensorflow_datasets as tfds
    builder = tfds.builder(args.name, data_dir=args.data_dir)
    builder.download_and_prepare()
    names = builder.info.features["label"].names
    splits = {s: _tfds_examples(args.name, s, args.data_dir) for s in ("train", "test")}
    n = write_archive(splits, names, args.out, args.format)
  except UserInputError as e:
    print(f"lottery_jax.data.export: error: {e}", file=sys.stderr)
    sys.exit(2)
  except ImportError as e:  # TFDS and what it needs to prepare a dataset are an extra.
    print(f"lottery_jax.data.export: error: {e}; TFDS needs the tfds extra: "
          "pip install -e '.[tfds]'", file=sys.stderr)
    sys.exit(2)
  print(f"wrote {n:,} images to {args.out}")


if __name__ == "__main__":
  main()
