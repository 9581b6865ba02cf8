"""Datasets over prepared files: pretraining fusions and labeled clouds for segmentation."""
