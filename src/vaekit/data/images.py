"""A folder of PNG/JPEG images; one subfolder per class gives the labels.

Opening the folder reads only each image's header (size and colour mode); pixels are
decoded when rows are read, so a folder larger than memory can be streamed by
DataLoader workers.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import VaekitError, option
from .dataset import CHANNEL_LAST, GRAY, model_rows
from .source import Source

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
GRAY_MODES = ("1", "L", "I", "I;16", "F")
IMAGES_PER_BLOCK = 64


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def is_image_folder(folder: Path) -> bool:
    return bool(_images_in(folder)) or any(
        d.is_dir() and _images_in(d) for d in folder.iterdir())


class ImageFolderSource(Source):
    """The images of a folder as uint8 rows (N, C, H, W); grayscale when every image is, RGB otherwise.

    Images of different sizes need ``image_size`` (H, W), to which all are resized.
    """

    parallel_reads = 4

    def __init__(self, folder: Path, image_size: tuple[int, int] | None = None):
        from PIL import Image, UnidentifiedImageError

        classes = sorted(d for d in folder.iterdir() if d.is_dir() and _images_in(d))
        top = _images_in(folder)
        if classes and top:
            raise VaekitError(f"{folder}: has images both at the top and in class subfolders; move the top "
                              "ones into a subfolder")
        files = [(p, label) for label, d in enumerate(classes) for p in _images_in(d)] if classes else \
            [(p, None) for p in top]
        if not files:
            raise VaekitError(f"{folder}: no PNG or JPEG images found")
        sizes, gray = set(), True
        for path, _ in files:  # headers only: Image.open does not decode the pixels
            try:
                with Image.open(path) as im:
                    sizes.add(im.size)
                    gray = gray and im.mode in GRAY_MODES
            except (UnidentifiedImageError, OSError) as e:
                raise VaekitError(f"{path}: cannot read the image ({e}); remove or replace it") from None
        if image_size is None and len(sizes) > 1:
            shown = ", ".join(f"{w}x{h}" for w, h in sorted(sizes)[:3])
            raise VaekitError(f"{folder}: images have different sizes ({shown}, ...); pass {option('image_size')} "
                              "(height x width) to resize them all")
        width, height = (image_size[1], image_size[0]) if image_size is not None else sizes.pop()
        self.files = [str(p) for p, _ in files]
        self.labels = np.array([label for _, label in files], dtype=np.int64) if classes else None
        self.class_names = tuple(d.name for d in classes) if classes else None  # the labels index these
        self.mode = "L" if gray else "RGB"
        self.size = (width, height)
        self.name = str(folder)
        self.layout = GRAY if gray else CHANNEL_LAST
        self.sample_shape = (1 if gray else 3, height, width)
        self.dtype = np.dtype(np.uint8)
        self.columns = None

    def __len__(self) -> int:
        return len(self.files)

    def block_bounds(self) -> np.ndarray:
        return np.unique(np.r_[np.arange(0, len(self), IMAGES_PER_BLOCK), len(self)])

    def _decode(self, path: str) -> np.ndarray:
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(path) as im:
                if im.mode in ("I;16", "I;16B", "I;16L", "I"):  # 16-bit grey: convert() would clip at 255
                    im = Image.fromarray((np.asarray(im, dtype=np.float64) / 257.0).round().clip(0, 255)
                                         .astype(np.uint8))
                im = im.convert(self.mode)
                if im.size != self.size:
                    im = im.resize(self.size, Image.Resampling.BILINEAR)
                return np.asarray(im, dtype=np.uint8)
        except (UnidentifiedImageError, OSError) as e:
            raise VaekitError(f"{path}: cannot read the image ({e}); remove or replace it") from None

    def take(self, rows: np.ndarray) -> np.ndarray:
        pixels = np.stack([self._decode(self.files[i]) for i in rows]) if len(rows) else \
            np.zeros((0, self.size[1], self.size[0]) + (() if self.mode == "L" else (3,)), np.uint8)
        return model_rows(pixels, self.layout, self.name)


def load_image_folder(folder: Path, image_size: tuple[int, int] | None = None):
    """All images of the folder in memory, as a Dataset."""
    return ImageFolderSource(folder, image_size).load()
