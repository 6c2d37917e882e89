"""movierec: MovieLens from download to a running recommendation service.

Heavy libraries (torch, Lightning, sentence-transformers) are imported only by the modules that
need them, so ``import movierec`` and the CLI stay quick to start.
"""

from movierec.data.dataset import Dataset
from movierec.data.registry import RELEASES, Release, get_release

__all__ = ["Dataset", "RELEASES", "Release", "get_release", "load_dataset", "__version__"]
__version__ = "0.1.0"


def load_dataset(name: str, data_dir=None, *, download: bool = True, use_cache: bool = True):
    """Load a MovieLens release (or a folder laid out like one) as a :class:`Dataset`.

    See :func:`movierec.data.loading.load_dataset`.
    """
    from movierec.data.loading import load_dataset as _load

    return _load(name, data_dir, download=download, use_cache=use_cache)
