"""Synthetic hard negatives for the face-ness study: round emblems (seal-like: rings of stars
and lettering around a central device) and shirt buttons (2 and 4 holes, rims, shading), drawn
with PIL from a fixed seed. Usage: make_synthetic.py OUT_DIR"""
import math
import random
import sys
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter

rng = random.Random(16)
out = Path(sys.argv[1])
out.mkdir(parents=True, exist_ok=True)

PALETTE = [(20, 40, 110), (200, 160, 50), (240, 235, 220), (150, 30, 40), (30, 90, 50), (90, 90, 95)]


def star(draw, cx, cy, r, fill):
    pts = []
    for k in range(10):
        a = -math.pi / 2 + k * math.pi / 5
        rr = r if k % 2 == 0 else r * 0.42
        pts.append((cx + rr * math.cos(a), cy + rr * math.sin(a)))
    draw.polygon(pts, fill=fill)


def emblem(size):
    """A seal-like emblem, size×size on transparent."""
    img = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    c = size / 2
    base, ring, ink = rng.sample(PALETTE, 3)
    d.ellipse([0, 0, size - 1, size - 1], fill=ring)
    band = size * rng.uniform(0.08, 0.16)
    d.ellipse([band, band, size - band, size - band], fill=base)
    # lettering: short radial dashes around the band
    n = rng.randint(24, 48)
    for k in range(n):
        if rng.random() < 0.15:
            continue
        a = 2 * math.pi * k / n
        r0, r1 = c - band * 0.8, c - band * 0.25
        d.line([(c + r0 * math.cos(a), c + r0 * math.sin(a)), (c + r1 * math.cos(a), c + r1 * math.sin(a))],
               fill=ink, width=max(1, size // 70))
    # a ring of stars or dots
    inner = c - band
    if rng.random() < 0.7:
        m = rng.randint(8, 16)
        for k in range(m):
            a = 2 * math.pi * k / m
            rr = inner * 0.82
            x, y = c + rr * math.cos(a), c + rr * math.sin(a)
            if rng.random() < 0.5:
                star(d, x, y, inner * 0.07, ring)
            else:
                d.ellipse([x - inner * 0.04, y - inner * 0.04, x + inner * 0.04, y + inner * 0.04], fill=ring)
    # the central device
    kind = rng.choice(["eagle", "shield", "star", "rings", "head"])
    s = inner * 0.6
    if kind == "eagle":
        d.ellipse([c - s, c - s * 0.3, c - s * 0.1, c + s * 0.3], fill=ring)  # wings
        d.ellipse([c + s * 0.1, c - s * 0.3, c + s, c + s * 0.3], fill=ring)
        d.polygon([(c - s * 0.3, c - s * 0.2), (c + s * 0.3, c - s * 0.2), (c + s * 0.3, c + s * 0.3), (c, c + s * 0.6),
                   (c - s * 0.3, c + s * 0.3)], fill=(240, 240, 240))
        d.ellipse([c - s * 0.15, c - s * 0.55, c + s * 0.15, c - s * 0.25], fill=(250, 250, 250))
        d.ellipse([c - s * 0.04, c - s * 0.45, c + s * 0.02, c - s * 0.39], fill=(20, 20, 20))
    elif kind == "shield":
        d.polygon([(c - s * 0.5, c - s * 0.5), (c + s * 0.5, c - s * 0.5), (c + s * 0.5, c + s * 0.1), (c, c + s * 0.7),
                   (c - s * 0.5, c + s * 0.1)], fill=ring)
        for k in range(5):
            x = c - s * 0.4 + k * s * 0.2
            d.line([(x, c - s * 0.2), (x, c + s * 0.3)], fill=(180, 30, 40), width=max(1, int(s * 0.06)))
    elif kind == "star":
        star(d, c, c, s, ring)
    elif kind == "rings":
        for k in range(3):
            r = s * (1 - 0.3 * k)
            d.ellipse([c - r, c - r, c + r, c + r], outline=ring, width=max(1, int(s * 0.06)))
    else:  # a profile-free "head": a disc with two dots, as coins and logos have
        d.ellipse([c - s * 0.6, c - s * 0.6, c + s * 0.6, c + s * 0.6], fill=ring)
        for dx in (-0.22, 0.22):
            d.ellipse([c + dx * s - s * 0.08, c - s * 0.2, c + dx * s + s * 0.08, c - s * 0.04], fill=base)
    return img.filter(ImageFilter.GaussianBlur(size / 300))


def background(w, h):
    kind = rng.choice(["curtain", "wall", "wood"])
    img = Image.new("RGB", (w, h))
    px = img.load()
    col = rng.choice([(130, 30, 35), (190, 170, 130), (60, 70, 110), (110, 75, 45), (210, 205, 195)])
    for x in range(w):
        f = 0.8 + 0.2 * math.sin(x / rng.uniform(9, 40)) if kind == "curtain" else 1.0
        for y in range(0, h):
            g = f * (0.9 + 0.1 * math.sin((x + y * 0.3) / 60.0)) if kind == "wood" else f
            px[x, y] = tuple(int(max(0, min(255, v * g + rng.uniform(-6, 6)))) for v in col)
    return img


def button(size):
    img = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    col = rng.choice([(235, 232, 225), (40, 40, 45), (120, 85, 50), (200, 190, 160), (30, 40, 80), (150, 150, 155)])
    dark = tuple(int(v * 0.6) for v in col)
    light = tuple(min(255, int(v * 1.2 + 20)) for v in col)
    d.ellipse([0, 0, size - 1, size - 1], fill=dark)
    rim = size * rng.uniform(0.08, 0.16)
    d.ellipse([rim * 0.4, rim * 0.2, size - rim * 0.6, size - rim * 0.8], fill=light)
    d.ellipse([rim, rim, size - rim, size - rim], fill=col)
    holes = rng.choice([2, 4])
    hr, off = size * 0.07, size * 0.14
    pts = [(-off, 0), (off, 0)] if holes == 2 else [(-off, -off), (off, -off), (-off, off), (off, off)]
    c = size / 2
    if rng.random() < 0.5 and holes == 4:
        thread = rng.choice([(240, 240, 240), (30, 30, 30), (160, 20, 30)])
        d.line([(c - off, c - off), (c + off, c + off)], fill=thread, width=max(1, int(hr)))
        d.line([(c + off, c - off), (c - off, c + off)], fill=thread, width=max(1, int(hr)))
    for dx, dy in pts:
        d.ellipse([c + dx - hr, c + dy - hr, c + dx + hr, c + dy + hr], fill=(15, 15, 15))
    return img.filter(ImageFilter.GaussianBlur(max(0.3, size / 120)))


def shirt(w, h):
    col = rng.choice([(230, 230, 235), (180, 200, 230), (60, 60, 70), (240, 235, 215), (120, 40, 50), (30, 50, 90)])
    img = Image.new("RGB", (w, h), col)
    px = img.load()
    for y in range(h):
        for x in range(w):
            n = rng.uniform(-5, 5) + (4 if (x // 3 + y // 3) % 2 else -4)
            px[x, y] = tuple(int(max(0, min(255, v + n))) for v in col)
    # a placket: a darker vertical band down the middle, with a seam
    d = ImageDraw.Draw(img)
    x = w // 2
    d.rectangle([x - w // 30, 0, x + w // 30, h], fill=tuple(int(v * 0.93) for v in col))
    d.line([(x - w // 30, 0), (x - w // 30, h)], fill=tuple(int(v * 0.8) for v in col), width=2)
    return img.filter(ImageFilter.GaussianBlur(0.6)), x


for i in range(24):
    w, h = rng.choice([(800, 600), (1024, 768), (640, 640)])
    bg = background(w, h)
    size = rng.randint(90, min(w, h) - 40)
    e = emblem(size)
    x, y = rng.randint(0, w - size), rng.randint(0, h - size)
    bg.paste(e, (x, y), e)
    bg.save(out / f"seal_{i:02}.png")

for i in range(12):
    w, h = rng.choice([(1200, 1600), (900, 1400)])
    img, x = shirt(w, h)
    size = rng.randint(20, 80)
    for k in range(4):
        b = button(size)
        y = int(h * (0.15 + 0.22 * k))
        img.paste(b, (x - size // 2, y), b)
    # loose buttons elsewhere, other sizes
    for k in range(3):
        s = rng.randint(24, 90)
        b = button(s)
        img.paste(b, (rng.randint(0, w - s), rng.randint(0, h - s)), b)
    img.save(out / f"buttons_{i:02}.png")
print("written to", out)
