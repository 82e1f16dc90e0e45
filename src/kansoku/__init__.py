"""kansoku (観測, "observation"): an online shop built to be observed."""

__version__ = "0.1.0"
