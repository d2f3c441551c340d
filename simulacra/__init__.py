"""simulacra: a toolkit for cultivating language-model characters (ems)."""
__version__ = "0.1.0"
