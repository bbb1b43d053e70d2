"""lod3d: satellite stereo imagery to 3D building models.

Stages are callable alone on arrays/files and compose into a :class:`Pipeline`.
"""

__version__ = "0.1.0"
