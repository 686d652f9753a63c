"""Reconstruction of a textured mesh and its lighting from a multi-view capture (``studio reconstruct``)."""
