"""The one exception type the CLI turns into a single readable line."""


class RlopsError(Exception):
    """A problem the user can act on (bad input, missing file, impossible setting).

    The message names what is wrong and where; the CLI prints it without a traceback and exits non-zero.
    """
