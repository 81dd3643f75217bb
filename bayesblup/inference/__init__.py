"""Inference: NUTS back ends and MAP, the compiled-model cache, and g | y, theta draw by draw."""
