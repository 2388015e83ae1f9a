"""Errors steerdiff raises. Every one names the problem: the keyword, the rule, the plugin or the value."""


class SteerdiffError(Exception):
    """Base class of every error steerdiff raises on purpose."""


class ConfigError(SteerdiffError, ValueError):
    """A bad argument: unknown schedule, length or steps out of range, canvas too long for the model."""


class ConstraintError(SteerdiffError, ValueError):
    """A constraint that cannot be compiled or cannot be met (empty language, too long for the canvas)."""


class UnsupportedSchemaError(ConstraintError):
    """A JSON Schema keyword the regular engine cannot express. `keyword` and `pointer` say which and where."""

    def __init__(self, keyword: str, pointer: str, why: str = ""):
        self.keyword, self.pointer, self.why = keyword, pointer, why
        msg = f"unsupported JSON Schema keyword {keyword!r} at {pointer or '#'}"
        super().__init__(msg + (f": {why}" if why else ""))


class AutomatonTooLarge(ConstraintError):
    """A regular constraint whose byte automaton has more states than the engine takes (``states``, ``limit``)."""

    def __init__(self, message: str, states: int, limit: int):
        self.states, self.limit = states, limit
        super().__init__(message)


class GrammarError(ConstraintError):
    """A lark grammar that does not load or whose language is empty; the message names the rule or line."""


class PluginError(SteerdiffError, RuntimeError):
    """A plugin raised or returned something malformed. `plugin` and `hook` name the culprit."""

    def __init__(self, plugin: str, hook: str, message: str):
        self.plugin, self.hook = plugin, hook
        super().__init__(f"plugin {plugin!r} in hook {hook!r}: {message}")


class ModelError(SteerdiffError, RuntimeError):
    """The model itself misbehaved (nan or infinite logits), not a plugin or an argument."""


class ValidationFailed(SteerdiffError, ValueError):
    """The finished output did not validate. `raw` is the generated text, kept for inspection."""

    def __init__(self, message: str, raw: str):
        self.raw = raw
        super().__init__(f"{message}\nraw output: {raw!r}")
