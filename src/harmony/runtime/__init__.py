"""Backends behind one runner interface: the runners and the backend registry (`backends`)."""
