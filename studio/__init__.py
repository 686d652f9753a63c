"""Differentiable Rendering Studio: fit 3D scenes to pictures and watch the gradients work."""

__version__ = "0.1.0"
