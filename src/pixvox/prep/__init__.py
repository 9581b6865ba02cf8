"""Data preparation, the library part: raw datasets → prepared files (docs/data.md, docs/architecture.md).

One module per concept:

- :mod:`.synthetic`: the procedural default dataset (frames + labeled clouds);
- :mod:`.sequence`: RGB-D sequences of any known layout → exported frames;
- :mod:`.scannet`: ScanNet ``.sens`` / meshes / mmdetection3d arrays, and the benchmark (classes, NYU40
  map, scene lists, data-efficient subsets) with its split files;
- :mod:`.sunrgbd`, :mod:`.s3dis`: those releases; :mod:`.pointcept`: Pointcept's preprocessed scenes,
  read in place;
- :mod:`.fusion`: exported frames → voxelized RGB-D fusions (pretraining data);
- :mod:`.ensure`: make sure a job's configured data exist (used by both jobs);
- :mod:`.cli`: ``python -m pixvox.prep <dataset> [args]``, the one entry of every preparer's parser.

Readers and writers of the prepared formats live in :mod:`pixvox.io`; the voxelizer in
:mod:`pixvox.geometry`.
"""
