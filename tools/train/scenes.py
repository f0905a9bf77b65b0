"""Synthetic videos and their captions: the data the project's demo model is trained on.

Two families of scenes, each drawn deterministically from a seed with numpy only:

  objects   "a red ball moving left on a blue background"
            a ball, square or triangle of a named colour moving left, right, up or down, or
            bouncing, over a plain background of another named colour;
  corridor  "a green hospital corridor with flickering lights"
            a first-person walk forward down an endless corridor (walls with doors, floor,
            ceiling lights), rendered by casting one ray per pixel, with a named wall colour,
            a kind (hospital, hotel, office: doors and floor) and lighting (bright, dim,
            flickering). The camera moves forward without end, so clips continue seamlessly.

The grammar (every prompt the model was trained on) is in GRAMMAR below and in the model
folder's README. `render(scene, frames, size)` returns uint8 frames [T, H, W, 3].
"""
from __future__ import annotations

import dataclasses
import itertools
import zlib

import numpy as np

COLORS = {  # name -> RGB
    "red": (205, 40, 40),
    "orange": (235, 135, 30),
    "yellow": (235, 215, 50),
    "green": (45, 170, 70),
    "blue": (40, 80, 210),
    "purple": (140, 60, 185),
    "white": (238, 238, 238),
    "black": (22, 22, 22),
}
CORRIDOR_COLORS = ["red", "orange", "yellow", "green", "blue", "purple", "white"]
SHAPES = ["ball", "square", "triangle"]
DIRECTIONS = ["left", "right", "up", "down", "bouncing"]
KINDS = ["hospital", "hotel", "office"]
LIGHTING = ["bright", "dim", "flickering"]

GRAMMAR = """\
objects:  a <colour> <shape> moving <left|right|up|down> on a <colour> background
          a <colour> <shape> bouncing on a <colour> background
          ("an" before orange)
          <shape>: ball, square, triangle; the two colours differ
corridor: a <corridor colour> <kind> corridor with <lighting> lights
          <kind>: hospital, hotel, office; <lighting>: bright, dim, flickering
colours:  red, orange, yellow, green, blue, purple, white, black
          (corridor colours: all but black)"""


@dataclasses.dataclass(frozen=True)
class Scene:
    family: str                 # "objects" or "corridor"
    color: str                  # object colour, or the corridor's wall colour
    shape: str = ""             # objects
    direction: str = ""         # objects
    background: str = ""        # objects
    kind: str = ""              # corridor
    lighting: str = ""          # corridor

    def caption(self) -> str:
        if self.family == "objects":
            motion = "bouncing" if self.direction == "bouncing" else f"moving {self.direction}"
            return f"{_a(self.color)} {self.color} {self.shape} {motion} on {_a(self.background)} {self.background} background"
        return f"{_a(self.color)} {self.color} {self.kind} corridor with {self.lighting} lights"


def _a(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def all_scenes() -> list[Scene]:
    out = []
    for c, s, d, b in itertools.product(COLORS, SHAPES, DIRECTIONS, COLORS):
        if c != b:
            out.append(Scene("objects", c, shape=s, direction=d, background=b))
    for c, k, l in itertools.product(CORRIDOR_COLORS, KINDS, LIGHTING):
        out.append(Scene("corridor", c, kind=k, lighting=l))
    return out


def is_held_out(scene: Scene) -> bool:
    """About one combination in eight never appears in training: the evaluation's prompts.
    Decided by a hash of the caption, so it does not depend on list order."""
    return zlib.crc32(scene.caption().encode()) % 8 == 0


def split() -> tuple[list[Scene], list[Scene]]:
    scenes = all_scenes()
    return [s for s in scenes if not is_held_out(s)], [s for s in scenes if is_held_out(s)]


def parse_caption(text: str) -> Scene | None:
    """The Scene a grammar prompt names, or None for text outside the grammar."""
    for s in all_scenes():
        if s.caption() == text.strip():
            return s
    return None


# ----------------------------------------------------------------------------- rendering

def _jitter(rgb, rng, amount=12.0):
    return np.clip(np.asarray(rgb, np.float32) + rng.uniform(-amount, amount, 3), 0, 255)


def _shape_alpha(shape, px, py, cx, cy, r):
    """Anti-aliased coverage of a shape centred at (cx, cy) with radius r (pixels)."""
    dx, dy = px - cx, py - cy
    if shape == "ball":
        d = np.sqrt(dx * dx + dy * dy) - r
    elif shape == "square":
        d = np.maximum(np.abs(dx), np.abs(dy)) - 0.85 * r
    else:  # equilateral triangle pointing up: signed distance to its three edges
        k = np.sqrt(3.0)
        h = 1.1 * r
        e1 = (k * dx - dy) / 2 - h / 2          # right edge
        e2 = (-k * dx - dy) / 2 - h / 2         # left edge
        e3 = dy - h / 2                         # bottom edge (y grows downwards)
        d = np.maximum(np.maximum(e1, e2), e3)
    return np.clip(0.5 - d, 0.0, 1.0)


def _render_objects(scene, frames, size, rng, start):
    H, W = size
    bg = _jitter(COLORS[scene.background], rng)
    fg = _jitter(COLORS[scene.color], rng)
    r = rng.uniform(0.10, 0.14) * min(H, W)
    speed = rng.uniform(0.012, 0.018) * min(H, W)      # pixels per frame
    travel = speed * (frames - 1)
    py, px = np.mgrid[0:H, 0:W].astype(np.float32) + 0.5
    margin = r * 1.15
    out = np.empty((frames, H, W, 3), np.uint8)
    d = scene.direction
    if d in ("left", "right"):
        lo, hi = margin, W - margin - travel
        x0 = rng.uniform(lo, max(lo, hi))
        y0 = rng.uniform(margin, H - margin)
    elif d in ("up", "down"):
        lo, hi = margin, H - margin - travel
        y0 = rng.uniform(lo, max(lo, hi))
        x0 = rng.uniform(margin, W - margin)
    else:
        x0 = rng.uniform(margin + 0.1 * W, W - margin - 0.1 * W)
        floor = H - margin
        height = rng.uniform(0.35, 0.55) * H
        period = rng.uniform(14, 20)
        phase = rng.uniform(0, period)
        drift = rng.uniform(-0.004, 0.004) * W
    for t in range(frames):
        tt = t + start
        if d == "right":
            cx, cy = x0 + speed * tt, y0
        elif d == "left":
            cx, cy = x0 + travel - speed * tt, y0
        elif d == "down":
            cx, cy = x0, y0 + speed * tt
        elif d == "up":
            cx, cy = x0, y0 + travel - speed * tt
        else:
            u = ((tt + phase) % period) / period          # 0..1 within one bounce
            cx = x0 + drift * tt
            cy = floor - height * 4 * u * (1 - u)
        a = _shape_alpha(scene.shape, px, py, cx, cy, r)[..., None]
        out[t] = np.clip(bg * (1 - a) + fg * a + 0.5, 0, 255).astype(np.uint8)
    return out


_KIND_STYLE = {  # door colour, floor colour, floor tiles, door spacing
    "hospital": dict(door=(225, 228, 232), floor=(190, 195, 200), tiles=True, spacing=3.0),
    "hotel": dict(door=(95, 55, 30), floor=(120, 25, 35), tiles=False, spacing=4.0),
    "office": dict(door=(110, 115, 125), floor=(80, 90, 110), tiles=True, spacing=5.0),
}


def _render_corridor(scene, frames, size, rng, start):
    H, W = size
    style = _KIND_STYLE[scene.kind]
    wall = _jitter(COLORS[scene.color], rng, 10)
    door = _jitter(style["door"], rng, 8)
    floor = _jitter(style["floor"], rng, 8)
    ceiling = np.array([200, 200, 196], np.float32)
    lamp = np.array([255, 250, 225], np.float32)
    speed = rng.uniform(0.10, 0.16)                   # corridor units per frame
    z0 = rng.uniform(0, 20)
    half_h = 0.75                                     # floor at -0.75, ceiling at +0.75
    spacing = style["spacing"]
    door_len, light_period = 1.0, 2.5
    j, i = np.meshgrid((np.arange(W) + 0.5) / W * 2 - 1, 1 - (np.arange(H) + 0.5) / H * 2)
    u = j * (W / max(H, W)) * 1.2
    v = i * (H / max(H, W)) * 1.2
    zw = 1.0 / np.maximum(np.abs(u), 1e-4)
    zf = half_h / np.maximum(np.abs(v), 1e-4)
    on_wall = zw < zf
    z = np.minimum(np.minimum(zw, zf), 60.0)
    y_hit = v * z                                     # height of the hit point on a wall
    x_hit = u * z                                     # across the floor / ceiling
    fog = np.exp(-z / 9.0)[..., None]
    left = u < 0
    flicker_rng = np.random.default_rng(rng.integers(1 << 31))
    flick = flicker_rng.uniform(0.35, 1.0, frames + start + 1)
    out = np.empty((frames, H, W, 3), np.uint8)
    for t in range(frames):
        tt = t + start
        Z = z0 + speed * tt + z
        # walls: doors at a period, the left wall's half a period on
        dz = np.mod(Z + np.where(left, spacing / 2, 0.0), spacing)
        is_door = on_wall & (dz < door_len) & (y_hit < 0.35)
        frame = np.where(on_wall[..., None], wall, 0.0)
        frame = np.where(is_door[..., None], door, frame)
        # door frames: a dark outline
        edge = on_wall & (y_hit < 0.4) & ((np.abs(dz) < 0.06) | (np.abs(dz - door_len) < 0.06) |
                                          ((dz < door_len) & (np.abs(y_hit - 0.37) < 0.03)))
        frame = np.where(edge[..., None], wall * 0.45, frame)
        on_floor = (~on_wall) & (v < 0)
        on_ceil = (~on_wall) & (v >= 0)
        f_col = floor
        if style["tiles"]:
            line = (np.mod(Z, 1.0) < 0.05) | (np.mod(x_hit + 10, 0.5) < 0.025)
            f_col = np.where(line[..., None], floor * 0.75, floor)
        frame = np.where(on_floor[..., None], f_col, frame)
        is_lamp = on_ceil & (np.abs(x_hit) < 0.3) & (np.mod(Z, light_period) < 0.7)
        frame = np.where(on_ceil[..., None], ceiling, frame)
        # lighting: bright, dim or flickering; lamps stay bright when lit
        level = {"bright": 1.0, "dim": 0.45, "flickering": flick[tt]}[scene.lighting]
        lit = frame * (0.25 + 0.75 * level) * (0.25 + 0.75 * fog)
        lamp_col = lamp * (0.55 + 0.45 * level)
        lit = np.where(is_lamp[..., None], lamp_col * (0.5 + 0.5 * fog), lit)
        out[t] = np.clip(lit + 0.5, 0, 255).astype(np.uint8)
    return out


def render(scene: Scene, frames: int, size: tuple[int, int], seed: int, start: int = 0) -> np.ndarray:
    """uint8 [frames, H, W, 3]. `start` shifts the clip in time (same scene, later frames)."""
    rng = np.random.default_rng(seed)
    if scene.family == "objects":
        return _render_objects(scene, frames, size, rng, start)
    return _render_corridor(scene, frames, size, rng, start)
