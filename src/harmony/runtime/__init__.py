"""Backends behind one runner interface, and TensorRT engine building."""
