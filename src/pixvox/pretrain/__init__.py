"""Pretraining: the student/teacher pair, one training step, and the job runner."""
