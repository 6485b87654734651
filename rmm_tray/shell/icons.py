"""Tray icons drawn at start-up, one per state: no image files to ship."""

from __future__ import annotations

from PIL import Image, ImageDraw

COLOURS = {
    "idle": ((109, 93, 252), (192, 77, 216)),
    "loading": ((245, 166, 35), (240, 120, 40)),
    "generating": ((38, 186, 120), (30, 150, 170)),
    "error": ((217, 63, 90), (160, 30, 60)),
}


def icon(state: str, size: int = 64) -> Image.Image:
    top, bottom = COLOURS.get(state, COLOURS["idle"])
    img = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    gradient = Image.new("RGBA", (size, size))
    draw = ImageDraw.Draw(gradient)
    for y in range(size):
        t = y / (size - 1)
        draw.line([(0, y), (size, y)], fill=tuple(int(a + (b - a) * t) for a, b in zip(top, bottom)))
    mask = Image.new("L", (size, size), 0)
    ImageDraw.Draw(mask).rounded_rectangle([2, 2, size - 3, size - 3], radius=size // 4, fill=255)
    img.paste(gradient, (0, 0), mask)
    d = ImageDraw.Draw(img)
    # A speech bubble: the app is a chat.
    m = size // 5
    d.rounded_rectangle([m, m, size - m, size - m - size // 8], radius=size // 8, fill="white")
    d.polygon([(m + size // 6, size - m - size // 8), (m + size // 10, size - m + 2),
               (m + size // 3, size - m - size // 8)], fill="white")
    return img
