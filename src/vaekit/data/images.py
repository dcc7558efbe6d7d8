"""A folder of PNG/JPEG images; one subfolder per class gives the labels."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import VaekitError
from .dataset import Dataset, from_arrays

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def is_image_folder(folder: Path) -> bool:
    return bool(_images_in(folder)) or any(
        d.is_dir() and _images_in(d) for d in folder.iterdir())


def load_image_folder(folder: Path, image_size: tuple[int, int] | None = None) -> Dataset:
    """All images as one uint8 array; grayscale when every image is, RGB otherwise.

    Images of different sizes need ``image_size`` (H, W), to which all are resized.
    """
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

    images = []
    for path, _ in files:
        try:
            with Image.open(path) as im:
                im.load()
                images.append(im.copy())
        except (UnidentifiedImageError, OSError) as e:
            raise VaekitError(f"{path}: cannot read the image ({e}); remove or replace it") from None
    gray = all(im.mode in ("1", "L", "I", "I;16", "F") for im in images)
    mode = "L" if gray else "RGB"
    sizes = {im.size for im in images}
    if image_size is None and len(sizes) > 1:
        shown = ", ".join(f"{w}x{h}" for w, h in sorted(sizes)[:3])
        raise VaekitError(f"{folder}: images have different sizes ({shown}, ...); pass --image-size HxW "
                          "to resize them all")
    arrays = []
    for im in images:
        im = im.convert(mode)
        if image_size is not None and im.size != (image_size[1], image_size[0]):
            im = im.resize((image_size[1], image_size[0]), Image.Resampling.BILINEAR)
        arrays.append(np.asarray(im, dtype=np.uint8))
    x = np.stack(arrays)
    y = np.array([label for _, label in files]) if classes else None
    return from_arrays(x, y, name=str(folder), columns=None)
