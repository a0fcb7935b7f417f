"""The dataset contract: read and write dataset folders (COCO + images + 16-bit masks)."""

from simreal.datasets.coco import extras, mask_bbox, mask_to_rle, rle_to_mask
from simreal.datasets.contract import NEGATIVE, Dataset, DatasetWriter, open_dataset
from simreal.datasets.imageio import IMAGE_EXTS, encode_image, encode_mask, read_image, read_mask

__all__ = [
    "IMAGE_EXTS",
    "NEGATIVE",
    "Dataset",
    "DatasetWriter",
    "encode_image",
    "encode_mask",
    "extras",
    "mask_bbox",
    "mask_to_rle",
    "open_dataset",
    "read_image",
    "read_mask",
    "rle_to_mask",
]
