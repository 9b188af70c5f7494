"""The version of harness, in a module of its own so that anything may import it without
importing the package facade (``harness/__init__``) and its lazy API."""

__version__ = "0.1.0"
