"""Models from the user's own code: import paths, instances, callables, and starting checkpoints.

A deployment's model is one of

- a registered name (``"mlp"``), built and seeded by :func:`~leakage.models.create_model`;
- an import path ``"package.module:callable"``: the callable receives ``input_shape``,
  ``num_classes`` and the model options as keywords and returns an ``nn.Module``;
- in Python, an ``nn.Module`` instance (copied, never modified) or such a callable.

A user's model keeps its own initialisation: the toolkit never re-draws its weights.
So that the same seed still gives the same model, a callable runs with torch's global
generator seeded from the run's model stream (and the caller's global state restored
afterwards). A checkpoint (a ``state_dict`` file, read with ``weights_only=True``) then
sets the starting weights and buffers; its keys and shapes must match the model's.
"""

from __future__ import annotations

import copy
import importlib
import inspect
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from leakage.errors import ConfigError

__all__ = [
    "ModelSource",
    "build_user_model",
    "is_import_path",
    "load_checkpoint",
    "model_label",
    "resolve_import_path",
]

#: What a simulation may be given as its model.
ModelSource = str | nn.Module | Callable[..., nn.Module]


def is_import_path(name: str) -> bool:
    """Whether ``name`` is an import path ``module:callable`` rather than a registered name.

    >>> is_import_path("my_lab.nets:build"), is_import_path("mlp")
    (True, False)
    """
    module, colon, attribute = name.partition(":")
    return bool(colon) and bool(module) and bool(attribute)


def resolve_import_path(path: str, *, field: str = "model") -> Callable[..., Any]:
    """Import ``"module:callable"`` and return the callable (``module:outer.inner`` reaches attributes).

    Raises:
        ConfigError: the module does not import, the attribute is missing, or it is not callable;
            one line naming ``field``.
    """
    if not is_import_path(path):
        raise ConfigError(f"{field} must be a registered name or an import path 'module:callable', got {path!r}")
    module_name, _, attribute = path.partition(":")
    try:
        target: Any = importlib.import_module(module_name)
    except Exception as error:  # any failure while importing the user's module
        raise ConfigError(
            f"{field} {path!r}: cannot import module {module_name!r}: {type(error).__name__}: {error}"
        ) from error
    for part in attribute.split("."):
        if not hasattr(target, part):
            raise ConfigError(f"{field} {path!r}: module {module_name!r} has no attribute {attribute!r}")
        target = getattr(target, part)
    if not callable(target):
        raise ConfigError(f"{field} {path!r}: {attribute!r} is a {type(target).__name__}, not a callable")
    return target  # type: ignore[no-any-return]


def build_user_model(
    source: nn.Module | Callable[..., nn.Module] | str,
    *,
    input_shape: tuple[int, ...],
    num_classes: int,
    generator: torch.Generator,
    options: Mapping[str, object] | None = None,
    field: str = "model",
) -> nn.Module:
    """Return the user's model: a copy of an instance, or what a callable (or import path) builds.

    The callable is called as ``callable(input_shape=..., num_classes=..., **options)``,
    passing only the keywords its signature accepts (a ``**kwargs`` accepts all), with
    torch's global generator seeded from ``generator`` and restored afterwards. Its
    weights are kept as built.

    Raises:
        ConfigError: the import path does not resolve, the callable raises or does not
            return an ``nn.Module``, or an instance is given options.
    """
    options = dict(options or {})
    if isinstance(source, nn.Module):
        if options:
            raise ConfigError(f"{field}_options apply to a builder, not to a model instance, got {sorted(options)}")
        return copy.deepcopy(source)
    builder = resolve_import_path(source, field=field) if isinstance(source, str) else source
    name = source if isinstance(source, str) else getattr(builder, "__qualname__", repr(builder))
    arguments = _accepted({"input_shape": tuple(input_shape), "num_classes": int(num_classes), **options}, builder)
    seed = int(torch.randint(0, 2**62, (1,), generator=generator))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        try:
            model = builder(**arguments)
        except ConfigError:
            raise
        except Exception as error:  # the user's builder failed: say so in one line
            raise ConfigError(f"{field} {name!r} raised {type(error).__name__}: {error}") from error
    if not isinstance(model, nn.Module):
        raise ConfigError(f"{field} {name!r} must return a torch.nn.Module, got {type(model).__name__}")
    return model


def _accepted(arguments: Mapping[str, object], builder: Callable[..., Any]) -> dict[str, object]:
    """The keywords of ``arguments`` that ``builder`` accepts; unknown options are an error, not dropped."""
    try:
        parameters = inspect.signature(builder).parameters
    except (TypeError, ValueError):  # no signature (a builtin): pass everything
        return dict(arguments)
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return dict(arguments)
    accepted = {k: v for k, v in arguments.items() if k in parameters}
    unknown = sorted(k for k in arguments if k not in parameters and k not in ("input_shape", "num_classes"))
    if unknown:
        raise ConfigError(
            f"model_options: {', '.join(map(repr, unknown))} not accepted by "
            f"{getattr(builder, '__qualname__', builder)!r} (it takes {', '.join(parameters) or 'no options'})"
        )
    return accepted


def model_label(source: ModelSource) -> str:
    """A name for ``source`` in settings and reports.

    A name or path is itself; a callable is its import path ``module:qualname`` (which
    rebuilds it where importable); an instance is ``<instance module.Class>``, which
    names it but cannot rebuild it.

    >>> model_label(torch.nn.Linear(2, 2))
    '<instance torch.nn.modules.linear.Linear>'
    >>> model_label(model_label)
    'leakage.models.user:model_label'
    """
    if isinstance(source, str):
        return source
    if isinstance(source, nn.Module):
        kind = type(source)
        return f"<instance {kind.__module__}.{kind.__qualname__}>"
    return f"{getattr(source, '__module__', '?')}:{getattr(source, '__qualname__', repr(source))}"


def load_checkpoint(model: nn.Module, path: str | os.PathLike[str], *, field: str = "checkpoint") -> nn.Module:
    """Load the ``state_dict`` file at ``path`` into ``model`` (in place), strictly, with ``weights_only=True``.

    Raises:
        ConfigError: the file is missing or not a safe ``state_dict`` (``weights_only``
            refuses pickled code), its keys differ from the model's, or a shape differs;
            one line naming ``field`` and the file.
    """
    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"{field}: no such file {str(file)!r}")
    try:
        state = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as error:  # unsafe pickle, corrupt or foreign file
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ConfigError(f"{field} {str(file)!r} is not a safe state_dict file: {first}") from error
    if isinstance(state, Mapping) and "state_dict" in state and isinstance(state["state_dict"], Mapping):
        state = state["state_dict"]
    if not isinstance(state, Mapping) or not all(
        isinstance(k, str) and isinstance(v, Tensor) for k, v in state.items()
    ):
        raise ConfigError(
            f"{field} {str(file)!r} must hold a state_dict (names to tensors), got {type(state).__name__}"
        )
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise ConfigError(
            f"{field} {str(file)!r} does not match the model: missing keys {_few(missing)}, "
            f"unexpected keys {_few(unexpected)}"
        )
    for name, value in state.items():
        if tuple(value.shape) != tuple(expected[name].shape):
            raise ConfigError(
                f"{field} {str(file)!r}: {name!r} has shape {tuple(value.shape)}, the model's is "
                f"{tuple(expected[name].shape)}"
            )
    model.load_state_dict(state, strict=True)
    return model


def _few(names: list[str], shown: int = 4) -> str:
    if not names:
        return "none"
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return "[" + ", ".join(map(repr, names[:shown])) + "]" + more
