"""Contact sheet of dataset images with their labels drawn (boxes or polygons and class names)."""

from __future__ import annotations

import colorsys
import math

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .render import RenderedImage

THUMB = 256
COLUMNS = 4


def class_color(class_id: int) -> tuple[int, int, int]:
    """A bright colour per class, golden-ratio spaced in hue so neighbours differ."""
    r, g, b = colorsys.hsv_to_rgb((class_id * 0.618034) % 1.0, 0.85, 1.0)
    return int(r * 255), int(g * 255), int(b * 255)


def contact_sheet(images: list[RenderedImage], class_names: list[str], task: str, thumb: int = THUMB,
                  columns: int = COLUMNS) -> np.ndarray:
    """[rows*thumb, cols*thumb, 3] uint8 grid of thumbnails with each label drawn.

    Boxes (detect) or polygon outlines (segment) in the class colour with the class name; the
    image name and split in the corner.
    """
    cols = min(columns, len(images))
    rows = math.ceil(len(images) / cols)
    sheet = Image.new("RGB", (cols * thumb, rows * thumb), (0, 0, 0))
    font = ImageFont.load_default(size=max(10, thumb // 18))
    for k, img in enumerate(images):
        tile = Image.fromarray(img.rgb).resize((thumb, thumb), Image.Resampling.BILINEAR)
        draw = ImageDraw.Draw(tile)
        sx, sy = thumb / img.rgb.shape[1], thumb / img.rgb.shape[0]
        for lab in img.labels:
            color = class_color(lab.class_id)
            x0, y0 = lab.box[0] * sx, lab.box[1] * sy
            if task == "segment":
                pts = [(float(x) * sx, float(y) * sy) for x, y in lab.polygon]
                draw.line(pts + pts[:1], fill=color, width=2)
            else:
                draw.rectangle([x0, y0, lab.box[2] * sx - 1, lab.box[3] * sy - 1], outline=color, width=2)
            draw.text((x0 + 2, y0 + 1), class_names[lab.class_id], fill=color, font=font,
                      stroke_width=2, stroke_fill=(0, 0, 0))
        draw.text((4, thumb - font.size - 4), f"{img.name} {img.split}", fill=(255, 255, 255), font=font,
                  stroke_width=2, stroke_fill=(0, 0, 0))
        sheet.paste(tile, ((k % cols) * thumb, (k // cols) * thumb))
    return np.asarray(sheet)
