"""One small generic registry used for datasets, models, partitions, schemes and attacks."""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

from leakage.errors import ConfigError, UnknownNameError

__all__ = ["Registry"]

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps short lowercase names to factories (classes or functions).

    Args:
        kind: what the registry holds, used in error messages ("scheme", "attack").
        plugin_modules: modules imported on first lookup so that packages layered on
            top of the base (``defenses``, ``attacks``) can register themselves without
            the base importing them.

    >>> COLORS: Registry[type] = Registry("color")
    >>> @COLORS.register("red")
    ... class Red: ...
    >>> COLORS.names()
    ['red']
    >>> COLORS.get("blue")
    Traceback (most recent call last):
    ...
    leakage.errors.UnknownNameError: unknown color 'blue'; choose one of: red
    """

    def __init__(self, kind: str, *, plugin_modules: tuple[str, ...] = ()) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}
        self._plugin_modules = plugin_modules
        self._plugins_loaded = not plugin_modules

    def register(self, name: str) -> Callable[[T], T]:
        """Return a decorator that registers its argument under ``name``."""
        if not name or name != name.strip():
            raise ValueError(f"{self.kind} name must be a non-empty word, got {name!r}")

        def decorator(entry: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._entries[name] = entry
            return entry

        return decorator

    def unregister(self, name: str) -> T:
        """Remove ``name`` and return its entry (for plugins and tests that register for a while).

        Raises:
            UnknownNameError: ``name`` is not registered.
        """
        entry = self.get(name)
        del self._entries[name]
        return entry

    def _load_plugins(self) -> None:
        if self._plugins_loaded:
            return
        self._plugins_loaded = True
        for module in self._plugin_modules:
            try:
                importlib.import_module(module)
            except ModuleNotFoundError as error:
                if error.name != module:  # the plugin exists but is broken: say so
                    raise

    def get(self, name: str) -> T:
        """Return the entry registered under ``name``.

        Raises:
            UnknownNameError: naming the kind and listing every registered name.
        """
        self._load_plugins()
        try:
            return self._entries[name]
        except KeyError:
            raise UnknownNameError(
                f"unknown {self.kind} {name!r}; choose one of: {', '.join(self.names())}"
            ) from None

    def create(self, name: str, /, *args: Any, **kwargs: Any) -> Any:
        """Call the entry registered under ``name`` with the given arguments.

        Raises:
            UnknownNameError: ``name`` is not registered.
            ConfigError: a keyword option is not one the entry accepts (the message
                lists the accepted options), instead of a bare ``TypeError``.
        """
        factory = self.get(name)
        _check_options(f"{self.kind} {name!r}", factory, kwargs)
        return factory(*args, **kwargs)  # type: ignore[operator]

    def names(self) -> list[str]:
        """Return the registered names, sorted."""
        self._load_plugins()
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        self._load_plugins()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())


def _check_options(what: str, factory: object, options: dict[str, Any]) -> None:
    """Raise ConfigError if ``options`` holds a keyword ``factory`` does not accept."""
    try:
        parameters = inspect.signature(factory).parameters.values()  # type: ignore[arg-type]
    except (TypeError, ValueError):  # builtins without a signature: let the call decide
        return
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return
    named = {
        p.name
        for p in parameters
        if p.kind in (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    }
    accepted = [p.name for p in parameters if p.kind is inspect.Parameter.KEYWORD_ONLY]
    unknown = sorted(set(options) - named)
    if unknown:
        raise ConfigError(
            f"unknown option {unknown[0]!r} for {what}; it accepts: "
            f"{', '.join(sorted(accepted)) or 'no options'}"
        )
