"""aicc: the operations platform for a national AI computing center."""

__version__ = "0.1.0"
