"""Plugin losses: discovery, isolation of broken plugins, and hot reload.

Where plugins come from, in this order (when two define the same name, the first keeps it):

1. every ``*.py`` in the project's ``plugins/`` folder (the shipped examples);
2. every ``*.py`` in each folder given with ``--plugins DIR`` (a single ``.py`` file works too);
3. the same for each entry of the ``STUDIO_PLUGINS`` environment variable (an ``os.pathsep``
   separated list, like ``PATH``);
4. installed distributions that expose the entry-point group ``studio.losses``
   (``[project.entry-points."studio.losses"] my_losses = "my_package.losses"``).

Files whose name starts with ``_`` or ``.`` are skipped (helpers, editor temp files).  A plugin
file is compiled from its bytes and executed as the module ``studio_plugin_<hash of its path>``,
so two files called ``ssim.py`` in different folders never clash and no ``__pycache__`` is
written next to the user's files.  Its ``@loss`` declarations are captured while it runs and
committed to the registry afterwards, which lets discovery refuse a name clash or a built-in
name, and means a file that fails halfway registers nothing.

:func:`reload_plugins` (the GUI's "Reload plugins" button, via ``Engine.reload_losses``) re-scans
the same places: files whose content changed are re-imported, new files are imported, losses of
removed files (or removed from a file) are unregistered, and unchanged files are left alone.
Nothing in here raises for a broken plugin: every problem comes back as one sentence naming the
file and line and saying what to do, with the traceback in :attr:`PluginProblem.details`.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import importlib.util
import inspect
import linecache
import logging
import os
import re
import sys
import threading
import traceback
import types
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterable

from .losses import REGISTRY, LossDef, LossRegistry, loss

log = logging.getLogger("studio.plugins")

#: Entry-point group through which installed packages provide losses.
ENTRY_POINT_GROUP = "studio.losses"
#: Environment variable with extra plugin folders (``os.pathsep`` separated).
ENV_VAR = "STUDIO_PLUGINS"
_ROOT = Path(__file__).resolve().parents[2]
#: The shipped example plugins, in a source checkout only: next to an installed package,
#: ``site-packages/plugins`` would be somebody else's code.
PROJECT_PLUGINS: Path | None = _ROOT / "plugins" if (_ROOT / "pyproject.toml").is_file() else None

# Names must survive ``--loss NAME=WEIGHT`` and TOML; a name with '=' or spaces could not be used.
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")


class PluginError(ValueError):
    """A plugin folder named on the command line that cannot be used; the message is one sentence."""


class PluginProblem(str):
    """One sentence for the status line (it *is* the string); ``details`` holds the traceback,
    for a log panel.  A ``str`` so that ``reload_plugins() -> list[str]`` stays plain to callers."""

    details: str

    def __new__(cls, sentence: str, details: str = "") -> "PluginProblem":
        obj = super().__new__(cls, sentence)
        obj.details = details
        return obj


@dataclass
class _Plugin:
    """One plugin file or entry point and what it declared the last time it was imported.

    Attributes:
        key: resolved file path, or ``entry point NAME = VALUE``.
        label: how messages name it (the path, or the entry point and its file).
        module: its module name in ``sys.modules``.
        digest: SHA-1 of the source last imported (also of a broken one, so that an unchanged
            broken file is not re-imported on every reload).
        defs: the losses of the last version that imported cleanly.
        problem: why the current version does not import, if it does not.
        entry_point: the entry point's name, for ``studio losses`` (empty for files).
    """

    key: str
    label: str
    module: str
    digest: str
    defs: list[LossDef] = field(default_factory=list)
    problem: PluginProblem | None = None
    entry_point: str = ""


def _sha1(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()


def _first_line(exc: BaseException) -> str:
    # A SyntaxError's str() repeats the file and line, which the sentence already gives.
    text = (exc.msg if isinstance(exc, SyntaxError) and exc.msg else str(exc)).strip().splitlines()
    return f"{exc.__class__.__name__}: {text[0]}" if text else exc.__class__.__name__


def _failing_line(exc: BaseException, filename: str) -> int | None:
    """Line in ``filename`` where the import failed: the syntax error's line, else the innermost
    traceback frame in that file (the plugin's own line, not the library it called)."""
    if isinstance(exc, SyntaxError) and exc.filename == filename:
        return exc.lineno
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == filename]
    return frames[-1].lineno if frames else None


def _what_to_do(exc: BaseException, kept: list[LossDef]) -> str:
    if isinstance(exc, ModuleNotFoundError) and exc.name:
        todo = f"install the package that provides {exc.name!r} or remove the import, then reload plugins"
    else:
        todo = "fix it, then reload plugins"
    if kept:
        verb = "keeps" if len(kept) == 1 else "keep"
        todo += f" (until then {', '.join(repr(d.name) for d in kept)} {verb} the previously loaded version)"
    return todo


class PluginManager:
    """Finds plugin losses, imports them in isolation and keeps the registry in step with them.

    Args:
        registry: where the losses go (the engine reads :data:`studio.optim.losses.REGISTRY`).
        project_dir: the project's plugin folder, scanned first (None: none).
    """

    def __init__(self, registry: LossRegistry = REGISTRY, project_dir: Path | None = PROJECT_PLUGINS) -> None:
        self.registry = registry
        self.project_dir = project_dir
        self.dirs: list[Path] = []  # from --plugins, remembered so that reload() needs no arguments
        self._plugins: dict[str, _Plugin] = {}
        self._owned: dict[str, LossDef] = {}  # registry names this manager has set, and to what
        self._shadowed: dict[str, LossDef] = {}  # what those names held before (an overridden built-in)
        # Discovery runs on the main thread, a reload on the engine's worker: one at a time.
        self._lock = threading.RLock()

    # ------------------------------------------------------------------ public

    def discover(self, dirs: Iterable[str | Path] = ()) -> list[PluginProblem]:
        """Add ``dirs`` (folders or ``.py`` files) to the places searched, then :meth:`reload`.

        Idempotent: discovering the same places again imports nothing and changes nothing.

        Returns:
            One sentence per problem (a :class:`PluginProblem`), empty when all is well.

        Raises:
            PluginError: an entry of ``dirs`` does not exist or is not a folder or ``.py`` file.
        """
        with self._lock:
            for d in dirs:
                p = Path(d).expanduser()
                if not (p.is_dir() or (p.is_file() and p.suffix == ".py")):
                    what = "does not exist" if not p.exists() else "is neither a folder nor a .py file"
                    raise PluginError(f"--plugins {d} {what}; give a folder of plugin .py files or one such file.")
                if p.resolve() not in self.dirs:
                    self.dirs.append(p.resolve())
            return self.reload()

    def reload(self) -> list[PluginProblem]:
        """Re-scan every place: import new and changed plugins, forget removed ones, and update
        the registry.  Never raises for a broken plugin.

        Returns:
            One sentence per problem now (a broken file is reported again until it is fixed).
        """
        with self._lock:
            problems: list[PluginProblem] = []
            found: dict[str, _Plugin] = {}
            for path in self._files(problems):
                found[str(path)] = self._load_file(path, self._plugins.get(str(path)))
            for ep in self._entry_points(problems):
                key = f"entry point {ep.name} = {ep.value}"
                if key not in found:
                    found[key] = self._load_entry_point(ep, key, self._plugins.get(key), found)
            for gone in self._plugins.keys() - found.keys():
                if not self._plugins[gone].entry_point:  # an installed package's module is not ours to drop
                    sys.modules.pop(self._plugins[gone].module, None)
            self._plugins = found
            problems += [p.problem for p in found.values() if p.problem is not None]
            problems += self._commit()
            return problems

    def unload(self) -> None:
        """Forget every plugin: their losses leave the registry (overridden built-ins come back),
        their modules leave ``sys.modules``, and the ``--plugins`` folders are forgotten."""
        with self._lock:
            for name in list(self._owned):
                self._release(name)
            for p in self._plugins.values():
                sys.modules.pop(p.module, None)
            self._plugins.clear()
            self.dirs.clear()

    def source_of(self, d: LossDef) -> str:
        """Where a registered loss comes from, for listings: ``built-in``, ``FILE:LINE`` or
        ``FILE:LINE (entry point NAME)``."""
        if d.builtin:
            return "built-in"
        where = f"{d.source}:{d.line}" if d.line else d.source
        for p in self._plugins.values():
            if p.entry_point and any(x is d for x in p.defs):
                return f"{where} (entry point {p.entry_point})"
        return where

    # ------------------------------------------------------------------ scanning

    def _files(self, problems: list[PluginProblem]) -> list[Path]:
        roots: list[tuple[Path, str]] = []
        if self.project_dir is not None and self.project_dir.is_dir():
            roots.append((self.project_dir, ""))
        roots += [(d, "--plugins") for d in self.dirs]
        roots += [(Path(e).expanduser(), ENV_VAR) for e in os.environ.get(ENV_VAR, "").split(os.pathsep) if e.strip()]
        files: list[Path] = []
        for root, origin in roots:
            if root.is_file() and root.suffix == ".py":
                candidates = [root]
            elif root.is_dir():
                candidates = sorted(root.glob("*.py"))
            else:
                problems.append(PluginProblem(f"plugin folder {root} (from {origin}) does not exist or is not a folder "
                                              f"of .py files; fix {origin} or create it, then reload plugins."))
                continue
            for f in candidates:
                r = f.resolve()
                if not f.name.startswith(("_", ".")) and r not in files:
                    files.append(r)
        return files

    def _entry_points(self, problems: list[PluginProblem]) -> list[importlib.metadata.EntryPoint]:
        try:
            # Entry points naming a module first: its @loss declarations are then credited to it,
            # not to an entry point that names one function of the same module.
            return sorted(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP),
                          key=lambda e: (e.attr is not None, e.name, e.value))
        except Exception as exc:  # noqa: BLE001 - broken metadata of some installed package must not stop the app
            problems.append(PluginProblem(f"reading the installed packages' {ENTRY_POINT_GROUP!r} entry points failed "
                                          f"({_first_line(exc)}); repair or uninstall the broken package.",
                                          traceback.format_exc()))
            return []

    # ------------------------------------------------------------------ importing

    def _load_file(self, path: Path, old: _Plugin | None) -> _Plugin:
        """Import a plugin file unless its content is unchanged since the last import."""
        key = str(path)
        try:
            source = path.read_bytes()
        except OSError as exc:
            return _Plugin(key, key, old.module if old else "", "", old.defs if old else [],
                           PluginProblem(f"plugin file {path} cannot be read ({exc.strerror}); check its permissions, "
                                         f"then reload plugins."))
        digest = _sha1(source)
        if old is not None and old.digest == digest:
            return old
        module_name = f"studio_plugin_{_sha1(key.encode())[:12]}"
        previous = sys.modules.get(module_name)
        module = types.ModuleType(module_name)
        module.__file__ = key
        # Registered before it runs, like any import: dataclasses and typing look modules up by name.
        sys.modules[module_name] = module
        linecache.checkcache(key)  # tracebacks must quote the lines of this version
        try:
            with self.registry.capture() as defs:
                # Compiled from the bytes just hashed (not via a cached .pyc, whose one-second
                # mtime check can miss a quick edit); dont_inherit keeps our __future__ flags out.
                exec(compile(source, key, "exec", dont_inherit=True), module.__dict__)
        except (Exception, SystemExit) as exc:  # noqa: BLE001 - a plugin may raise anything at import
            if previous is not None:
                sys.modules[module_name] = previous
            else:
                sys.modules.pop(module_name, None)
            kept = old.defs if old else []
            line = _failing_line(exc, key)
            at = f" line {line}" if line else ""
            return _Plugin(key, key, module_name, digest, kept,
                           PluginProblem(f"plugin file {path}{at} failed to import ({_first_line(exc)}); "
                                         f"{_what_to_do(exc, kept)}.", traceback.format_exc()))
        return _Plugin(key, key, module_name, digest, self._as_plugin_defs(defs))

    def _load_entry_point(self, ep: importlib.metadata.EntryPoint, key: str, old: _Plugin | None,
                          found: dict[str, _Plugin]) -> _Plugin:
        """Import an entry point's module, and re-import it when its file changed (an editable
        install being developed).  An entry point naming a module registers whatever the module
        declares; one naming a plain function registers it under the entry point's name."""
        dist = getattr(getattr(ep, "dist", None), "name", None)
        label = f"entry point {ep.name!r} ({ep.value}{', from ' + dist if dist else ''})"
        try:
            # Captured from the start: finding the module imports its parent packages, which may
            # declare losses too.
            with self.registry.capture() as defs:
                spec = importlib.util.find_spec(ep.module)
                origin = spec.origin if spec is not None and spec.has_location else None
                digest = _sha1(Path(origin).read_bytes()) if origin else ""
                if old is not None and old.digest == digest:
                    return old
                if old is not None and ep.module in sys.modules:
                    importlib.reload(sys.modules[ep.module])
                obj = ep.load()
                known = [d for p in found.values() for d in p.defs] + self.registry.all() + defs
                if inspect.isfunction(obj) and not any(d.fn is obj for d in known):
                    loss(ep.name)(obj)
        except (Exception, SystemExit) as exc:  # noqa: BLE001 - an installed plugin may raise anything
            frames = traceback.extract_tb(exc.__traceback__)
            module_file = getattr(sys.modules.get(ep.module), "__file__", None) or ""
            line = _failing_line(exc, module_file) if module_file else None
            if line is not None:
                where = f" at {module_file} line {line}"
            elif frames:  # not in the module itself: the innermost frame (its package, a dependency)
                where = f" at {frames[-1].filename} line {frames[-1].lineno}"
            else:
                where = ""
            kept = old.defs if old else []
            return _Plugin(key, label, ep.module, "", kept,
                           PluginProblem(f"plugin {label}{where} failed to import ({_first_line(exc)}); "
                                         f"{_what_to_do(exc, kept)}.", traceback.format_exc()), ep.name)
        return _Plugin(key, label, ep.module, digest, self._as_plugin_defs(defs), entry_point=ep.name)

    @staticmethod
    def _as_plugin_defs(defs: list[LossDef]) -> list[LossDef]:
        # A plugin cannot make itself a built-in (that would hide it from the override check and
        # word its failures as the studio's).
        return [replace(d, builtin=False) if d.builtin else d for d in defs]

    # ------------------------------------------------------------------ the registry

    def _commit(self) -> list[PluginProblem]:
        """Make the registry hold exactly the plugins' losses (first definition of a name wins),
        restoring what a released name held before."""
        problems: list[PluginProblem] = []
        chosen: dict[str, tuple[LossDef, _Plugin]] = {}
        for plugin in self._plugins.values():
            for d in plugin.defs:
                where = f"{plugin.label} line {d.line}" if d.line else plugin.label
                current = self._shadowed.get(d.name) or (None if d.name in self._owned or d.name not in self.registry
                                                         else self.registry.get(d.name))
                problem = None
                if not _NAME.fullmatch(d.name):
                    problem = (f"loss {d.name!r} in {where} has an unusable name; use letters, digits, '_', '.' or '-', "
                               f"starting with a letter")
                elif d.name in chosen:
                    problem = (f"loss {d.name!r} in {where} is already defined by {chosen[d.name][1].label}; "
                               f"rename one of them")
                elif current is not None and current.builtin and not d.override:
                    problem = (f"loss {d.name!r} in {where} has the name of a built-in loss; rename it, or pass "
                               f"override=True to @loss to replace the built-in deliberately")
                elif not _takes_three_arguments(d):
                    problem = f"loss {d.name!r} in {where} must take three arguments (render, target, ctx)"
                if problem:
                    problems.append(PluginProblem(problem + ", then reload plugins."))
                else:
                    chosen[d.name] = (d, plugin)
        for name in [n for n in self._owned if n not in chosen]:
            self._release(name)
        for name, (d, plugin) in chosen.items():
            if self._owned.get(name) is d:
                continue
            if name not in self._owned and name in self.registry:
                self._shadowed[name] = self.registry.get(name)
            if name in self._shadowed:
                log.warning("loss %r from %s replaces the %s one from %s.", name, plugin.label,
                            "built-in" if self._shadowed[name].builtin else "registered", self._shadowed[name].source)
            self.registry.register(d)
            self._owned[name] = d
        return problems

    def _release(self, name: str) -> None:
        """Take a plugin's loss out of the registry, restoring what the name held before."""
        del self._owned[name]
        before = self._shadowed.pop(name, None)
        if before is not None:
            self.registry.register(before)
        else:
            self.registry.unregister(name)


def _takes_three_arguments(d: LossDef) -> bool:
    try:
        inspect.signature(d.fn).bind(None, None, None)
    except TypeError:
        return False
    except ValueError:  # no signature to inspect (some C callables): let the first step tell
        return True
    return True


#: The studio's plugin manager: the CLI, the workspace and the GUI share it.
MANAGER = PluginManager()


def discover_plugins(dirs: Iterable[str | Path] = ()) -> list[str]:
    """Find and import plugin losses (see the module docstring) into the loss registry.

    Args:
        dirs: extra plugin folders or files (``--plugins``), remembered for :func:`reload_plugins`.

    Returns:
        One sentence per problem; each is a :class:`PluginProblem` whose ``details`` holds the
        traceback.

    Raises:
        PluginError: an entry of ``dirs`` does not exist.
    """
    return MANAGER.discover(dirs)


def reload_plugins() -> list[str]:
    """Re-import changed plugin files, import new ones and drop removed ones, keeping the app and
    the run alive (``engine.reload_losses(reload_plugins)``).

    Returns:
        One sentence per problem; each is a :class:`PluginProblem` whose ``details`` holds the
        traceback.
    """
    return MANAGER.reload()
