"""Datasets: raw sources, preprocessing fitted on the train split, distilled sets."""

from lottery_jax.data.distilled_npz import DistilledSet
from lottery_jax.data.distilled_npz import load_distilled
from lottery_jax.data.distilled_npz import preprocessing_kind
from lottery_jax.data.distilled_npz import save_distilled
from lottery_jax.data.preprocess import apply_preprocessing
from lottery_jax.data.preprocess import apply_standardize
from lottery_jax.data.preprocess import apply_zca
from lottery_jax.data.preprocess import describe
from lottery_jax.data.preprocess import fit_preprocessing
from lottery_jax.data.preprocess import fit_standardize
from lottery_jax.data.preprocess import fit_zca
from lottery_jax.data.preprocess import fit_zca_cached
from lottery_jax.data.preprocess import Preprocessing
from lottery_jax.data.preprocess import PREPROCESSING_KINDS
from lottery_jax.data.preprocess import Standardize
from lottery_jax.data.preprocess import Zca
from lottery_jax.data.sources import default_cache_dir
from lottery_jax.data.sources import load_digits
from lottery_jax.data.sources import load_image_folder
from lottery_jax.data.sources import load_source
from lottery_jax.data.sources import load_tfds
from lottery_jax.data.sources import RawDataset
from lottery_jax.data.sources import Split

__all__ = [
    "DistilledSet",
    "PREPROCESSING_KINDS",
    "Preprocessing",
    "RawDataset",
    "Split",
    "Standardize",
    "Zca",
    "apply_preprocessing",
    "apply_standardize",
    "apply_zca",
    "default_cache_dir",
    "describe",
    "fit_preprocessing",
    "fit_standardize",
    "fit_zca",
    "fit_zca_cached",
    "load_digits",
    "load_distilled",
    "load_image_folder",
    "load_source",
    "load_tfds",
    "preprocessing_kind",
    "save_distilled",
]
