"""Errors a user can cause and fix.

Anything raised as :class:`Lod3dError` (or a subclass) is a mistake in the user's input or
environment: the CLI prints its message as one line and exits non-zero, with no traceback.
Messages name the file or option and the problem, e.g. ``"img1.tif: no RPC tags"``.
Any other exception is a bug in lod3d and is shown in full.
"""


class Lod3dError(Exception):
    """A user-facing error: bad input, missing file, unusable option value."""


class InputError(Lod3dError):
    """An input file or option value is unusable."""


class OutputError(Lod3dError):
    """An output location is unusable (exists, not writable, disk full)."""
