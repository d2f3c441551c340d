"""Layer 4: ems. An em is a folder; ``Em.load(folder)`` reads and checks it."""
from simulacra.ems.config import EmConfig, FacultyConfig, SectionConfig
from simulacra.ems.em import Em

__all__ = ["Em", "EmConfig", "FacultyConfig", "SectionConfig"]
