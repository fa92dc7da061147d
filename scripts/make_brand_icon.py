"""Draw the integration's brand icon (256x256 PNG): a GPU card with a spark.

Run once with the project venv; the PNG is committed:
    .venv/bin/python scripts/make_brand_icon.py
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

SIZE = 256
OUT = Path(__file__).resolve().parent.parent / "custom_components/spark_control/brand/icon.png"


def draw() -> Image.Image:
    image = Image.new("RGBA", (SIZE, SIZE), (0, 0, 0, 0))
    pen = ImageDraw.Draw(image)
    # Rounded tile in NVIDIA-ish green.
    pen.rounded_rectangle((8, 8, 248, 248), radius=48, fill=(38, 120, 60, 255))
    # The GPU card: body, fan and connector fingers.
    pen.rounded_rectangle((40, 84, 216, 176), radius=12, fill=(235, 240, 235, 255))
    pen.ellipse((62, 100, 122, 160), fill=(38, 120, 60, 255))
    pen.ellipse((82, 120, 102, 140), fill=(235, 240, 235, 255))
    for x in range(70, 200, 18):
        pen.rectangle((x, 176, x + 10, 194), fill=(235, 240, 235, 255))
    # The spark: a lightning bolt on the card's right half.
    bolt = [(168, 92), (138, 134), (158, 134), (144, 170), (184, 122), (162, 122), (178, 92)]
    pen.polygon(bolt, fill=(255, 196, 0, 255))
    return image


if __name__ == "__main__":
    OUT.parent.mkdir(parents=True, exist_ok=True)
    draw().save(OUT, optimize=True)
    print(f"wrote {OUT}")
