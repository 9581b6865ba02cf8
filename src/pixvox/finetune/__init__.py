"""Fine-tuning for 3D semantic segmentation: the network and its initialization (:mod:`.model`), one
training step (:mod:`.step`), evaluation on the original points (:mod:`.evaluate`), command-line arguments (:mod:`.cli`) and the job runner (:mod:`.run`)."""
