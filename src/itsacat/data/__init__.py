"""Data sets (h5 files, image folders), their validation and digest, and the one preprocessing
path from a picture to model input, shared by training and serving."""

from itsacat.data.dataset import Dataset, Split, load_dataset
from itsacat.data.errors import DatasetError, ImageError
from itsacat.data.images import (
    IMAGE_SIZE,
    N_X,
    SUPPORTED_FORMATS,
    DecodedImage,
    decode_image,
    load_image_file,
    to_input_column,
)

__all__ = [
    "IMAGE_SIZE", "N_X", "SUPPORTED_FORMATS", "Dataset", "DatasetError", "DecodedImage",
    "ImageError", "Split", "decode_image", "load_dataset", "load_image_file", "to_input_column",
]
