"""The one exception type that the command line turns into a one-line error."""
from __future__ import annotations


class PffError(Exception):
    """A problem with the user's input (a file, a folder, a config, an option).

    The message is a complete sentence fragment that names the problem, e.g.
    ``"no images found in 'photos/'"``; ``pff`` prints it as
    ``pff: error: <message>`` and exits with status 2.
    """
