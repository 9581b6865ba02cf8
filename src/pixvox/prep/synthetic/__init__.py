"""Procedural indoor scenes rendered as RGB-D sequences: pixvox's embedded default dataset.

Each scene is a room (floor, four walls, ceiling) furnished with tables, chairs, beds, sofas,
cabinets, bookshelves, lamps, doors, windows and pictures, all built from yaw-rotated boxes with
procedural textures (planks, tiles, stripes, fabric noise, book spines) in class-dependent colors
and view-independent Lambertian shading (a directional light plus a ceiling point light), so the
same surface looks the same from every frame. A camera loops around the room looking across it;
frames are rendered by vectorized ray-box intersection with exact z-depth and known poses.

Modules: :mod:`.scene` (classes, materials, the scene model), :mod:`.furniture` (objects),
:mod:`.room` (layout: :func:`make_scene`), :mod:`.texture` (albedo, shading), :mod:`.render`
(camera, ray caster), :mod:`.cloud` (labeled cloud), :mod:`.generate` (the dataset writer and CLI).

Python::

    from pixvox.prep.synthetic import generate
    summary = generate("data/synthetic", num_scenes=4, frames_per_scene=40, seed=0, image_size=(240, 320))
"""

from pixvox.prep.synthetic.cloud import sample_cloud
from pixvox.prep.synthetic.generate import DATASET_JSON, generate, main
from pixvox.prep.synthetic.render import Rendering, camera_path, intrinsics_for, look_pose, render
from pixvox.prep.synthetic.room import make_scene
from pixvox.prep.synthetic.scene import CLASS_NAMES, NEAR, Scene

__all__ = [
    "CLASS_NAMES",
    "DATASET_JSON",
    "NEAR",
    "Rendering",
    "Scene",
    "camera_path",
    "generate",
    "intrinsics_for",
    "look_pose",
    "main",
    "make_scene",
    "render",
    "sample_cloud",
]
