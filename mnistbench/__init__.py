"""mnistbench: manual vs built-in vs scikit-learn classic models on MNIST, under one harness.

The Python API (docs/plugins.md), importable from here; each name is loaded on first use, so
`import mnistbench` stays cheap:

    run, sweep, study, load_results, report, compare, plan              train and read (mnistbench.api)
    register, register_family, unregister, Family, DataRecipe,          bring your own implementation
    Implementation, deferred, families, implementations, PluginWarning  (mnistbench.registry)
    RunConfig, ConfigError, ConfigTypeError                             (mnistbench.config)
    DataError, OutputError, ResultError                                 (data, files, results)

Errors: every wrong type or value given to the API raises ConfigError, before anything is written, or
one of its subclasses: ConfigTypeError (a value of the wrong type; also a TypeError), DataError (data
that cannot be found, read or used, the file named) and OutputError (an output that cannot be written:
permissions, a file in the way, a full disk; what was written before stays intact). ResultError: a result or benchmark file that is not what it claims to be.
The CLI prints any of them as one line and exits 2.

The modules behind study and report are mnistbench.studygrid (the notebook's study grid) and
mnistbench.reporting (tables, statistics, plots, comparisons).
"""
from __future__ import annotations

import importlib

__version__ = "0.1.0"

# public name -> the module that defines it
_EXPORTS = {
    **dict.fromkeys(("run", "sweep", "study", "load_results", "report", "compare", "plan"), "api"),
    **dict.fromkeys(("register", "register_family", "unregister", "Family", "DataRecipe", "Implementation",
                     "deferred", "families", "implementations", "PluginWarning"), "registry"),
    **dict.fromkeys(("RunConfig", "ConfigError", "ConfigTypeError"), "config"),
    "DataError": "data", "OutputError": "files", "ResultError": "results",
}
__all__ = [  # noqa: RUF022 (grouped as above)
    "run", "sweep", "study", "load_results", "report", "compare", "plan",
    "register", "register_family", "unregister", "Family", "DataRecipe", "Implementation", "deferred",
    "families", "implementations", "PluginWarning", "RunConfig", "ConfigError", "ConfigTypeError", "DataError", "OutputError", "ResultError",
]


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'mnistbench' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
