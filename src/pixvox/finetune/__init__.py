"""Fine-tuning for 3D semantic segmentation: the network and its initialization (:mod:`.model`), one
training step (:mod:`.step`), evaluation on the original points (:mod:`.evaluate`) and the job
(:mod:`.run`, on the shared pixvox.engine.job assembly; its data come from pixvox.prep.ensure)."""
