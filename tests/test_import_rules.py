"""Import rules of the layout, read from each module's syntax tree (``ast``), never from its text:

- the core (``steerdiff/``) never imports the plugins (``steerdiff_plugins``), at module level or inside a
  function, by ``import``, ``from ... import`` or ``importlib.import_module("...")``;
- no core module but the command line imports names from the package's ``__init__`` (``from . import x``
  where ``x`` is not a submodule), so the package's own imports never run in a circle;
- the core's modules import each other without cycles (function-level imports included);
- only ``validate.py`` imports ``load_model`` from ``steerdiff.adapters``: every other path to a model goes
  through the checked ``steerdiff.validate.load_model`` (a bad device or path type is a named ConfigError).

And the layout's documentation matches the tree: ``ARCHITECTURE.md`` and the README's layout section name
every module of both packages by file name, and every file or folder they name exists.
"""

from __future__ import annotations

import ast
import re
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CORE = ROOT / "steerdiff"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _package_of(path: Path) -> str:
    name = _module_name(path)
    return name if path.name == "__init__.py" else name.rpartition(".")[0]


def imports_of(path: Path, source: str | None = None) -> list[tuple[int, str, list[str]]]:
    """``[(line, absolute module, [imported names])]`` for every import in the file (relative ones resolved;
    ``importlib.import_module`` / ``__import__`` with a constant string count as imports of that module)."""
    tree = ast.parse(path.read_text(encoding="utf-8") if source is None else source, filename=str(path))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name, []) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = _package_of(path).split(".")
                base = base[: len(base) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            out.append((node.lineno, module, [a.name for a in node.names]))
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) \
                and isinstance(node.args[0].value, str):
            f = node.func
            name = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""
            if name in ("import_module", "__import__"):
                out.append((node.lineno, node.args[0].value, []))
    return out


def _plugin_imports(path: Path, source: str | None = None) -> list[str]:
    return [f"{path.relative_to(ROOT)}:{line} imports {mod}" for line, mod, _ in imports_of(path, source)
            if mod == "steerdiff_plugins" or mod.startswith("steerdiff_plugins.")]


def _core_files() -> list[Path]:
    return sorted(CORE.rglob("*.py"))


def test_the_core_never_imports_the_plugins():
    bad = [b for p in _core_files() for b in _plugin_imports(p)]
    assert not bad, "the core must not import steerdiff_plugins (use a hook or a registered type):\n" + "\n".join(bad)


def test_the_plugin_rule_sees_every_spelling():
    """The checker itself: each way of importing a plugin is caught, a mention in a string is not."""
    fake = CORE / "fake.py"
    for src in ("import steerdiff_plugins.regex", "from steerdiff_plugins import regex",
                "def f():\n    from steerdiff_plugins.schema.compiled import compile_schema",
                "import importlib\nm = importlib.import_module('steerdiff_plugins.json_schema')"):
        assert _plugin_imports(fake, src), src
    assert not _plugin_imports(fake, "'''see steerdiff_plugins.regex'''\nimport steerdiff.plugins")


def test_no_core_module_imports_from_the_package_init():
    submodules = {p.stem for p in CORE.glob("*.py")} | {p.name for p in CORE.iterdir() if (p / "__init__.py").exists()}
    bad = []
    for p in _core_files():
        if p.parent != CORE or p.name in ("__init__.py", "cli.py"):  # cli: the entry layer, reads __version__
            continue
        for line, mod, names in imports_of(p):
            if mod == "steerdiff" and any(n not in submodules for n in names):
                bad.append(f"{p.relative_to(ROOT)}:{line} imports {names} from steerdiff/__init__.py")
    assert not bad, "\n".join(bad)


def test_core_modules_import_each_other_without_cycles():
    graph: dict[str, set[str]] = {}
    for p in _core_files():
        name = _module_name(p)
        deps = graph.setdefault(name, set())
        for _, mod, names in imports_of(p):
            for target in [mod] + [f"{mod}.{n}" for n in names]:
                if target.startswith("steerdiff.") and target != name and (
                        (ROOT / (target.replace(".", "/") + ".py")).exists()
                        or (ROOT / target.replace(".", "/") / "__init__.py").exists()):
                    deps.add(target)
    cycles, state = [], {}

    def visit(n: str, stack: list[str]) -> None:
        state[n] = 1
        for d in sorted(graph.get(n, ())):
            if state.get(d) == 1:
                cycles.append(" -> ".join(stack[stack.index(d):] + [d]))
            elif d not in state:
                visit(d, stack + [d])
        state[n] = 2

    for n in sorted(graph):
        if n not in state:
            visit(n, [n])
    assert not cycles, "import cycles in the core:\n" + "\n".join(cycles)


def test_only_validate_imports_the_unchecked_load_model():
    bad = [f"{p.relative_to(ROOT)}:{line}" for p in _core_files() if p.name != "validate.py"
           for line, mod, names in imports_of(p) if mod == "steerdiff.adapters" and "load_model" in names]
    assert not bad, ("load the model through steerdiff.validate.load_model (it checks the arguments first), not "
                     "steerdiff.adapters.load_model:\n" + "\n".join(bad))


def test_builtin_plugin_table_matches_the_entry_points():
    """``steerdiff.plugins.BUILTIN`` (how built-ins are found when autoload is off) names the same modules as
    pyproject.toml's entry points, and each module imports."""
    import importlib
    import tomllib

    from steerdiff.plugins import BUILTIN

    eps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["entry-points"]["steerdiff"]
    assert BUILTIN == eps
    for module in BUILTIN.values():
        importlib.import_module(module)


PACKAGES = (ROOT / "steerdiff", ROOT / "steerdiff_plugins")


def _layout_docs() -> dict[str, str]:
    """``{name: text}``: ARCHITECTURE.md whole, and the README from ``## Layout`` to its next section."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    start = readme.index("\n## Layout")
    end = readme.find("\n## ", start + 1)
    return {"ARCHITECTURE.md": (ROOT / "ARCHITECTURE.md").read_text(encoding="utf-8"),
            "README.md (Layout)": readme[start: end if end >= 0 else len(readme)]}


def layout_mismatches(text: str, packages=PACKAGES, root: Path = ROOT) -> list[str]:
    """What a layout document gets wrong about ``packages``: a module (``name.py``; ``__init__.py`` aside) or
    subpackage (``name/``) it never names in backticks (a file name shared by ``n`` modules must be named
    ``n`` times), and a backticked ``x.py`` or ``x/`` that exists neither from ``root`` nor as a module or
    folder of the packages."""
    names = re.findall(r"`([^`\s]+)`", text)
    files = Counter(n.rsplit("/", 1)[-1] for n in names if n.endswith(".py"))
    folders = {n.rstrip("/").rsplit("/", 1)[-1] for n in names if n.endswith("/")}
    modules = [m for pkg in packages for m in pkg.rglob("*.py") if m.name != "__init__.py" and "__pycache__" not in m.parts]
    subpackages = [d.parent for pkg in packages for d in pkg.rglob("*/__init__.py")]
    wrong = [f"module {m.relative_to(root)} is not named (`{m.name}`)" for m in modules
             if files[m.name] < sum(o.name == m.name for o in modules)]
    wrong += [f"subpackage {d.relative_to(root)}/ is not named (`{d.name}/`)" for d in subpackages if d.name not in folders]
    known_files = {m.name for m in modules} | {"__init__.py"}
    known_dirs = {d.name for d in subpackages}
    for n in names:
        if n.endswith(".py") and not (root / n).is_file() and n.rsplit("/", 1)[-1] not in known_files:
            wrong.append(f"`{n}` names no file")
        if n.endswith("/") and len(n) > 1 and not (root / n).is_dir() and n.rstrip("/").rsplit("/", 1)[-1] not in known_dirs:
            wrong.append(f"`{n}` names no folder")
    return wrong


@pytest.mark.parametrize("doc", ["ARCHITECTURE.md", "README.md (Layout)"])
def test_layout_docs_match_the_tree(doc):
    wrong = layout_mismatches(_layout_docs()[doc])
    assert not wrong, f"{doc} does not match the tree:\n" + "\n".join(wrong)


def test_layout_check_sees_a_missing_and_a_stale_module(tmp_path):
    """The checker itself, on a made-up package: an unnamed module, a module named once where two share its
    file name, an unnamed subpackage, and a name that no longer exists are each reported."""
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    for f in ("__init__.py", "a.py", "loop.py", "sub/__init__.py", "sub/loop.py", "sub/b.py"):
        (pkg / f).write_text("")

    def check(text):
        return layout_mismatches(text, [pkg], tmp_path)

    good = "`a.py`, `loop.py`; `sub/`: `loop.py`, `b.py`"
    assert check(good) == []
    assert check("`loop.py`; `sub/`: `loop.py`, `b.py`") == ["module pkg/a.py is not named (`a.py`)"]
    assert any("sub/loop.py" in w for w in check("`a.py`, `loop.py`; `sub/`: `b.py`"))
    assert check("`a.py`, `loop.py`, `loop.py`, `b.py`") == ["subpackage pkg/sub/ is not named (`sub/`)"]
    assert check(good + ", `gone.py`, `old/`") == ["`gone.py` names no file", "`old/` names no folder"]
