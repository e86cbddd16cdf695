"""Writing a whole output folder atomically (exports, reports): build it beside its final place,
then swap it in, so readers see the old folder or the new one, never a half-written one."""

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def replacing_folder(final: Path) -> Iterator[Path]:
    """Yield a fresh sibling folder to fill; on success it replaces `final` (which may exist), on
    error it is removed and `final` is left untouched. No heavy imports: training uses it too."""
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
    try:
        yield tmp
        if final.exists():
            shutil.rmtree(final)
        tmp.rename(final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
