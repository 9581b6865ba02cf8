"""The controlled transfer benchmark (issue 11): does the 2D teacher's knowledge reach the 3D network?

Modules, one concept each: :mod:`.data` (pretraining fusions with a contiguous held-out tail, the
labeled rooms), :mod:`.arms` (arm configs and the run cache), :mod:`.features` (frozen per-point
features; the probe itself is :mod:`pixvox.evaluation.probe`), :mod:`.stats` (paired t-intervals),
:mod:`.retrieval` (held-out voxel→pixel top-1), :mod:`.finetune` (scratch vs pretrained fine-tuning),
:mod:`.report` (docs/transfer.{md,json}, the figure), :mod:`.ablation` (its table of screened
changes), :mod:`.compare` (does a rerun reproduce a report within its intervals;
``tools/transfer_compare.py``) and :mod:`.bench` (the whole run; ``tools/transfer_bench.py`` is its
command line).
"""
