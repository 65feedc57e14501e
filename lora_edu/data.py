"""Data that ships with Python and its libraries, so nothing is downloaded at run time."""
from __future__ import annotations

import numpy as np

__all__ = ["photo"]


def photo() -> np.ndarray:
    """Grace Hopper's portrait from matplotlib's sample data, grayscale in [0, 1]: shape (512, 512), float64."""
    from matplotlib import cbook
    from matplotlib import image as mpimg

    try:
        path = cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    except (OSError, ValueError) as e:  # a trimmed matplotlib install
        raise FileNotFoundError("matplotlib's sample image grace_hopper.jpg is missing from this install; "
                                "pass any 2-D grayscale array of your own instead") from e
    rgb = mpimg.imread(path)[20:532].astype(np.float64) / 255.0   # (512, 512, 3): the square around the face
    return rgb @ np.array([0.299, 0.587, 0.114])                    # luminance (ITU-R BT.601)
