"""One small generic registry used for datasets, models, partitions, schemes and attacks."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

from leakage.errors import UnknownNameError

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
        """Call the entry registered under ``name`` with the given arguments."""
        factory = self.get(name)
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
