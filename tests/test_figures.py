"""Figure helpers of gaacnn.study that the notebooks rely on."""


def test_the_visual_comparison_crops_where_the_texture_is():
    import numpy as np

    from gaacnn.study import textured_crop

    img = np.full((200, 300, 3), 128, dtype=np.uint8)
    rng = np.random.default_rng(0)
    img[120:184, 220:284] = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)  # the only texture
    top, left = textured_crop(img, 64)
    assert abs(top - 120) <= 8 and abs(left - 220) <= 8
