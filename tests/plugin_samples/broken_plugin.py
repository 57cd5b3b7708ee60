"""A plugin whose import fails, as one with a missing dependency does."""
import fancy_kernels_not_installed  # noqa: F401 (the import is the point: it fails)
