"""Figure helpers of gaacnn.figures that the notebooks rely on."""


def test_the_visual_comparison_crops_where_the_texture_is():
    import numpy as np

    from gaacnn.figures import textured_crop

    img = np.full((200, 300, 3), 128, dtype=np.uint8)
    rng = np.random.default_rng(0)
    img[120:184, 220:284] = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)  # the only texture
    top, left = textured_crop(img, 64)
    assert abs(top - 120) <= 8 and abs(left - 220) <= 8


def test_table_pngs_are_tight():
    """A rendered table has no blank band above or below it (the old layout left a third of the
    image white), whatever its number of rows."""
    import tempfile
    from pathlib import Path

    import numpy as np
    import pandas as pd
    from PIL import Image

    from gaacnn.figures import write_table

    for rows in (3, 30):
        df = pd.DataFrame({"method": [f"codec {i} (measured here)" for i in range(rows)],
                           "bd_psnr_db": np.linspace(-1, 5, rows), "mse_bd_rate_pct": [float("nan")] * rows})
        with tempfile.TemporaryDirectory() as tmp:
            png = write_table(df, Path(tmp) / "t", "a table")[2]
            gray = np.asarray(Image.open(png).convert("L"))
        blank = (gray > 250).all(axis=1)
        inked = np.flatnonzero(~blank)
        assert inked[0] < 0.05 * len(gray) and inked[-1] > 0.95 * len(gray), rows
        assert blank.mean() < 0.2, rows
