"""The one exception type the command line turns into a one-line message."""


class GaacnnError(Exception):
    """A problem the user can fix (bad input, missing file, wrong weights)."""
