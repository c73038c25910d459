"""`--svg FILE` of `capture --ladder` and `bench --compare`: the file a picture is written to.

The path is checked before the work starts (a capture or a comparison can take minutes; a path
that cannot be written should say so at once, not at the end), without emptying a file that is
already there, and written when the picture is ready. Either failure is one line naming the
file and the reason, exit status 2. A file created for a picture that never came (Ctrl+C before
the end, a failed start) is removed again.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from socklab.errors import UsageError
from socklab.i18n import _


class PictureFile:
    """Call order: `PictureFile(path)` (checks the path) -> `write(svg)`? -> `discard()`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._created = not path.exists()
        self._written = False
        try:
            # Append mode creates a missing file and leaves an existing one as it is.
            with path.open("a", encoding="utf-8"):
                pass
        except OSError as exc:
            raise self._cannot_write(exc) from exc

    def write(self, svg: str) -> None:
        try:
            self.path.write_text(svg, encoding="utf-8")
        except OSError as exc:
            raise self._cannot_write(exc) from exc
        self._written = True

    def discard(self) -> None:
        """Remove the file again if it was created here and never written."""
        if self._created and not self._written:
            with contextlib.suppress(OSError):  # already gone or not ours to remove: nothing lost
                self.path.unlink()

    def _cannot_write(self, exc: OSError) -> UsageError:
        return UsageError(
            _(
                "cannot write the picture {path}: {reason}. Choose a path in a folder you can write to."
            ).format(path=self.path, reason=exc.strerror or exc)
        )
