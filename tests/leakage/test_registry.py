import pytest

from leakage.errors import UnknownNameError
from leakage.registry import Registry


def test_registering_a_name_twice_is_an_error() -> None:
    registry: Registry[object] = Registry("widget")
    registry.register("a")(object)

    with pytest.raises(ValueError, match="widget 'a' is already registered"):
        registry.register("a")(dict)


def test_unknown_name_lists_every_registered_name_sorted() -> None:
    registry: Registry[object] = Registry("widget")
    for name in ("zeta", "alpha", "mid"):
        registry.register(name)(object)

    with pytest.raises(UnknownNameError) as error:
        registry.get("beta")

    assert str(error.value) == "unknown widget 'beta'; choose one of: alpha, mid, zeta"
    assert isinstance(error.value, ValueError)


def test_create_calls_the_factory_with_options() -> None:
    registry: Registry[object] = Registry("widget")
    registry.register("pair")(lambda *, left, right: (left, right))

    assert registry.create("pair", left=1, right=2) == (1, 2)


def test_plugin_modules_are_imported_on_first_lookup() -> None:
    registry: Registry[object] = Registry("widget", plugin_modules=("leakage.no_such_plugin",))

    assert registry.names() == []  # a plugin package that is not installed is simply absent


def test_schemes_registry_loads_defenses_plugins() -> None:
    from leakage.aggregation import SCHEMES

    assert "plain" in SCHEMES.names()
