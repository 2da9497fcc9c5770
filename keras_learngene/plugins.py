"""The plugin manager: loads the built-in plugins and installed ones, and
keeps a registry per hook.

Which installed plugins load is decided by the environment variable
`KLG_LOAD_PLUGINS`: unset loads every package of the entry-point group
`keras_learngene`; a comma-separated list loads only those entry-point names;
empty loads none. The built-in plugins always load.
"""

import difflib
import importlib
import os
import sys
import warnings
from importlib import metadata

import pluggy

from keras_learngene import hookspecs

DEFAULT_PLUGINS = (
    "keras_learngene.default_plugins.forms",
    "keras_learngene.default_plugins.similarities",
    "keras_learngene.default_plugins.strategies",
    "keras_learngene.default_plugins.methods",
)
ENTRY_POINT_GROUP = "keras_learngene"
KINDS = ("forms", "similarities", "strategies", "methods")
SINGULAR = {"forms": "form", "similarities": "similarity", "strategies": "strategy",
            "methods": "method"}

pm = pluggy.PluginManager("keras_learngene")
pm.add_hookspecs(hookspecs)

_state = {"loaded": False, "errors": {}, "versions": {}, "registries": {}, "commands": {},
          "excluded": []}


class PluginError(ValueError):
    """A name that is not registered, registered twice, or whose plugin failed."""


def _is_reference(obj):
    return isinstance(obj, str)


def _check_reference(ref, kind, name, plugin):
    module, sep, attribute = ref.partition(":")
    if not sep or not module or not attribute or " " in ref:
        raise PluginError(
            f"{plugin}: {SINGULAR[kind]} {name!r} is registered as the string {ref!r}; a "
            "string must name the object as 'package.module:attribute'."
        )


class Registry:
    """Name -> object registry of one hook, with the plugin that registered it.

    An entry registered as a reference `"package.module:attribute"` is
    imported (and checked) the first time `get` asks for it, so that listing
    names (`klg plugins`) imports no plugin's code beyond its hooks.

    Args:
        kind: one of `KINDS`: `"forms"`, `"similarities"`, `"strategies"`, `"methods"`.
    """

    def __init__(self, kind):
        self.kind = kind
        self.entries = {}  # name -> (obj, plugin name)
        self.conflicts = {}  # name -> [plugin names]

    def add(self, name, obj, plugin):
        if not isinstance(name, str) or not name:
            raise PluginError(
                f"{plugin}: {self.kind} names must be non-empty strings, got {name!r}"
            )
        if name in self.conflicts:
            self.conflicts[name].append(plugin)
        elif name in self.entries:
            self.conflicts[name] = [self.entries.pop(name)[1], plugin]
            warnings.warn(
                f"{SINGULAR[self.kind]} {name!r} is registered by both "
                f"{self.conflicts[name][0]!r} and {plugin!r}; it cannot be used until one "
                "of them is uninstalled or excluded with KLG_LOAD_PLUGINS.",
                stacklevel=2,
            )
        else:
            self.entries[name] = (obj, plugin)

    def names(self):
        return sorted(self.entries)

    def in_order(self):
        """Names in registration order (built-ins first)."""
        return list(self.entries)

    def plugin_of(self, name):
        return self.entries[name][1]

    def get(self, name):
        """Returns the object registered as `name`, or raises `PluginError`."""
        if name in self.entries:
            obj, plugin = self.entries[name]
            if _is_reference(obj):
                obj = self._resolve(name, obj, plugin)
                self.entries[name] = (obj, plugin)
            return obj
        if name in self.conflicts:
            raise PluginError(
                f"{SINGULAR[self.kind]} {name!r} is registered by several plugins: "
                f"{', '.join(map(repr, self.conflicts[name]))}. Uninstall one, or exclude it "
                "with KLG_LOAD_PLUGINS."
            )
        message = f"Unknown {SINGULAR[self.kind]} {name!r}. Registered: {', '.join(self.names())}."
        close = difflib.get_close_matches(str(name), self.names(), n=1)
        if close:
            message += f" Did you mean {close[0]!r}?"
        if _state["errors"]:
            failed = "; ".join(f"{p}: {e}" for p, e in _state["errors"].items())
            message += f" Plugins that failed to load: {failed}."
        raise PluginError(message + excluded_note())


    def _resolve(self, name, ref, plugin):
        module, _, attribute = ref.partition(":")
        try:
            obj = importlib.import_module(module)
            for part in attribute.split("."):
                obj = getattr(obj, part)
            return _normalize(self.kind, obj, name)
        except Exception as exc:
            raise PluginError(
                f"{plugin}: {SINGULAR[self.kind]} {name!r} is registered as {ref!r}, which "
                f"cannot be loaded: {type(exc).__name__}: {exc}"
            ) from exc


# what a registered object is normalised with, per kind (imported when first needed: the
# forms' and methods' modules import Keras)
_NORMALIZERS = {"forms": ("keras_learngene.forms", "as_form"),
                "similarities": ("keras_learngene.similarity", "as_similarity"),
                "strategies": ("keras_learngene.strategies", "as_strategy"),
                "methods": ("keras_learngene.methods", "as_method")}


def _normalize(kind, obj, name):
    module, function = _NORMALIZERS[kind]
    return getattr(importlib.import_module(module), function)(obj, name=name)


def excluded_note():
    """The sentence an "unknown name" error ends with when KLG_LOAD_PLUGINS
    kept installed plugins out (the name may be theirs); else ``""``."""
    if not _state["excluded"]:
        return ""
    return (f" Installed plugins not loaded (KLG_LOAD_PLUGINS="
            f"{os.environ.get('KLG_LOAD_PLUGINS', '')!r} excludes them): "
            f"{', '.join(_state['excluded'])}; to use one, add its name to KLG_LOAD_PLUGINS or "
            "unset the variable.")


def _allowed_entry_points():
    allow = os.environ.get("KLG_LOAD_PLUGINS")
    eps = list(metadata.entry_points(group=ENTRY_POINT_GROUP))
    if allow is None:
        return eps
    wanted = {n.strip() for n in allow.split(",") if n.strip()}
    installed = sorted({ep.name for ep in eps})
    for name in sorted(wanted - set(installed)):  # a misspelt name would be skipped unseen
        close = difflib.get_close_matches(name, installed, n=1)
        print(f"keras-learngene: KLG_LOAD_PLUGINS names {name!r}, which is not an "
              f"installed plugin; installed: {', '.join(installed) or 'none'}."
              + (f" Did you mean {close[0]!r}?" if close else ""), file=sys.stderr)
    _state["excluded"] = [name for name in installed if name not in wanted]
    return [ep for ep in eps if ep.name in wanted]


def _load():
    if _state["loaded"]:
        return
    _state["loaded"] = True
    for module_name in DEFAULT_PLUGINS:
        if pm.get_plugin(module_name) is None:
            pm.register(importlib.import_module(module_name), name=module_name)
    for ep in _allowed_entry_points():
        if pm.get_plugin(ep.name) is not None:
            continue
        try:
            pm.register(ep.load(), name=ep.name)
            _state["versions"][ep.name] = ep.dist.version if ep.dist else None
        except Exception as exc:  # a broken plugin must not break the library
            _report(ep.name, exc)


def _report(plugin, exc):
    _state["errors"][plugin] = f"{type(exc).__name__}: {exc}"
    print(f"keras-learngene: plugin {plugin!r} failed: {_state['errors'][plugin]}",
          file=sys.stderr)


def reset():
    """Forgets every plugin but the built-ins and rebuilds the registries on
    next use (after changing `KLG_LOAD_PLUGINS`, or in tests)."""
    for name, _ in list(pm.list_name_plugin()):
        if name not in DEFAULT_PLUGINS:
            pm.unregister(name=name)
    _state.update(loaded=False, errors={}, versions={}, registries={}, commands={},
                  excluded=[])


def register_plugin(plugin, name=None):
    """Registers a plugin object or module in this process (tests, notebooks).

    Args:
        plugin: a module or object with `@hookimpl` functions.
        name: the plugin's name; defaults to pluggy's.

    Returns:
        The name it was registered under.
    """
    _load()
    name = pm.register(plugin, name=name)
    _state["registries"].clear()
    return name


def unregister_plugin(name):
    """Removes a plugin registered with `register_plugin` (by name)."""
    pm.unregister(name=name)
    _state["errors"].pop(name, None)
    _state["registries"].clear()


def registry(kind):
    """The registry of one hook: `"forms"`, `"similarities"`, `"strategies"` or
    `"methods"`.

    Each hook implementation is called with a `register(name, obj)` callback
    (`obj` the object, or a `"package.module:attribute"` reference to it);
    an implementation that raises is reported with its plugin's name and the
    rest keep working.
    """
    if kind not in KINDS:
        raise ValueError(f"Unknown registry {kind!r}; one of {', '.join(KINDS)}.")
    _load()
    if kind not in _state["registries"]:
        reg = Registry(kind)
        hook = getattr(pm.hook, f"register_{kind}")
        for impl in hook.get_hookimpls():  # pluggy lists them in registration order
            plugin = pm.get_name(impl.plugin)

            def register(name, obj, _plugin=plugin):
                if _is_reference(obj):  # imported when first used (`Registry.get`)
                    _check_reference(obj, kind, name, _plugin)
                else:
                    obj = _normalize(kind, obj, name)
                reg.add(name, obj, _plugin)

            try:
                impl.function(register=register)
            except Exception as exc:
                _report(plugin, exc)
        _state["registries"][kind] = reg
    return _state["registries"][kind]


def get_form(name):
    """The form registered as `name`."""
    return registry("forms").get(name)


def get_similarity(name):
    """The similarity metric registered as `name`."""
    return registry("similarities").get(name)


def get_strategy(name):
    """The inheritance strategy registered as `name`."""
    return registry("strategies").get(name)


def get_method(name):
    """The condensing method registered as `name`."""
    return registry("methods").get(name)


def load_commands(cli):
    """Lets every plugin add its `klg` subcommands to `cli`, the `click.Group`
    (the hook `register_commands(cli)`), one plugin at a time: a plugin whose
    hook raises is reported (`plugin_errors`) and the others' commands still
    load. What each added is listed by `describe_plugins`."""
    _load()
    for impl in pm.hook.register_commands.get_hookimpls():
        name = pm.get_name(impl.plugin)
        before = set(cli.commands)
        try:
            impl.function(cli=cli)
        except Exception as exc:  # a broken plugin must not break klg
            _report(name, exc)
        _state["commands"][name] = sorted(set(cli.commands) - before)


def plugin_of_module(module):
    """The installed plugin (not a built-in) whose code the module named
    `module` belongs to, or `None`: a module of the top-level package of its
    hook functions or of what it registered."""
    top = module.partition(".")[0]
    for name, plugin in pm.list_name_plugin():
        if name in DEFAULT_PLUGINS:
            continue
        modules = {impl.function.__module__ for caller in pm.get_hookcallers(plugin) or []
                   for impl in caller.get_hookimpls() if impl.plugin is plugin}
        for kind in KINDS:
            modules |= {_module_of(obj) for obj, owner in registry(kind).entries.values()
                        if owner == name}
        if top in {m.partition(".")[0] for m in modules if m} - {"keras_learngene"}:
            return name
    return None


def _module_of(obj):
    if _is_reference(obj):
        return obj.partition(":")[0]
    return getattr(obj, "__module__", None) or type(obj).__module__


def plugin_errors():
    """`{plugin name: error}` for every plugin that failed to load or register."""
    for kind in KINDS:  # hooks run when a registry is built
        registry(kind)
    return dict(_state["errors"])


def _missing_references(plugin):
    """What a plugin registered by reference whose top-level package is not
    installed (`None` if there is none). Only the top level is looked up:
    finding `a.b` imports `a`, and listing plugins must import nothing heavy."""
    from importlib.util import find_spec

    missing = []
    for kind in KINDS:
        for entry, (obj, owner) in registry(kind).entries.items():
            if owner != plugin or not _is_reference(obj):
                continue
            top = obj.partition(":")[0].split(".")[0]
            try:
                found = find_spec(top) is not None
            except (ImportError, ValueError):
                found = False
            if not found:
                missing.append(f"{SINGULAR[kind]} {entry!r} -> {obj!r}")
    if missing:
        return "references to packages that are not installed: " + ", ".join(missing)
    return None


def describe_plugins(include_builtin=False):
    """What each loaded plugin registered, for `klg plugins`.

    Args:
        include_builtin: include the default plugins of the library.

    Returns:
        A list of dicts `{name, version, forms, similarities, strategies,
        methods, commands, hooks, conflicts, error, builtin}`; `conflicts` lists
        `"kind:name"` entries this plugin registered that another plugin also
        registered (unusable until one is removed).
    """
    _load()
    rows = {}
    for name, plugin in pm.list_name_plugin():
        if name in DEFAULT_PLUGINS and not include_builtin:
            continue
        rows[name] = {
            "name": name,
            "version": _state["versions"].get(name),
            **{kind: [] for kind in KINDS},
            "commands": [],
            "conflicts": [],
            "builtin": name in DEFAULT_PLUGINS,
        }
        rows[name]["hooks"] = sorted(hc.name for hc in pm.get_hookcallers(plugin) or [])
        rows[name]["commands"] = sorted(_state["commands"].get(name, []))
    for kind in KINDS:
        reg = registry(kind)
        for entry, (_, plugin) in reg.entries.items():
            if plugin in rows:
                rows[plugin][kind].append(entry)
        for entry, owners in reg.conflicts.items():
            for plugin in owners:
                if plugin in rows:
                    rows[plugin]["conflicts"].append(f"{SINGULAR[kind]}:{entry}")
    for name, row in rows.items():
        row["error"] = _state["errors"].get(name) or _missing_references(name)
        for kind in KINDS:
            row[kind].sort()
    for name, error in _state["errors"].items():
        rows.setdefault(name, {"name": name, "version": _state["versions"].get(name),
                               **{kind: [] for kind in KINDS}, "commands": [], "hooks": [],
                               "conflicts": [], "error": error, "builtin": False})
    return sorted(rows.values(), key=lambda r: (not r["builtin"], r["name"]))
