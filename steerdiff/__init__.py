"""steerdiff: controllable generation with masked diffusion language models.

    import steerdiff as sd
    model = sd.load_model()                      # the embedded default model, offline, on the CPU
    out = sd.generate(model, "prompt", length=32, constraints=[sd.Template("Dear {{name:6}}, ...")])

Constraint classes (``sd.Template``, ``sd.Regex``, ``sd.JSONSchema``, ``sd.Grammar``, ...) come from
plugins registered through the ``steerdiff`` entry-point group; they are looked up by class name.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from .adapters import Adapter, wrap_model
from .constraints import Constraint, RegularConstraint
from .edits import LogitsEdit
from .errors import (AutomatonTooLarge, ConfigError, ConstraintError, GrammarError, ModelError, PluginError,
                     SteerdiffError, UnsupportedSchemaError, ValidationFailed)
from .hookspecs import hookimpl
from .loop import generate
from .plugins import constraint_types, get_plugin_manager, make_constraint, register_plugin, unregister_plugin
from .run import Result, Run
from .validate import load_model  # adapters.load_model behind the argument checks of steerdiff.validate

try:
    __version__ = version("steerdiff")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.1.0"


# Imported as functions last, so that ``sd.fill``/``sd.rewrite`` stay the functions (importing a
# submodule binds its name on the package; these imports rebind the names to the functions).
from .fill import fill  # noqa: E402
from .rewrite import rewrite  # noqa: E402


def __getattr__(name: str):
    """``sd.Template``, ``sd.Regex``, ...: constraint classes registered by plugins, by class name."""
    for cls, _plugin in constraint_types().values():
        if cls.__name__ == name:
            return cls
    raise AttributeError(f"module 'steerdiff' has no attribute {name!r} (no installed plugin registers a constraint class of that name)")


# What users and plugin authors use; constraint classes (sd.Template, ...) come from plugins via __getattr__.
__all__ = [
    "Adapter", "AutomatonTooLarge", "ConfigError", "Constraint", "ConstraintError", "GrammarError", "LogitsEdit",
    "ModelError", "PluginError", "RegularConstraint", "Result", "Run", "SteerdiffError", "UnsupportedSchemaError", "ValidationFailed", "constraint_types",
    "fill", "generate", "get_plugin_manager", "hookimpl", "load_model", "make_constraint", "register_plugin",
    "rewrite", "unregister_plugin", "wrap_model", "__version__",
]
