"""ScanNet v2: ``.sens`` streams → exported frames, labeled scans → labeled clouds, and the benchmark
definition (classes, NYU40 map, scene lists, data-efficient subsets) with the split files it implies.

Modules: :mod:`.benchmark` (the one place for labels and subsets), :mod:`.sens`, :mod:`.frames`,
:mod:`.meshes`, :mod:`.splits`, :mod:`.cli` (``python -m pixvox.prep scannet ...``).
"""
