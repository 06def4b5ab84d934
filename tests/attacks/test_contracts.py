"""Every registered attack keeps the shared contract: a name, a declared observer, checked options."""

import pytest

from attacks import ATTACKS, AttackBase, HistoryAttack, create_attack
from leakage.errors import ConfigError, UnknownNameError


@pytest.mark.parametrize("name", ATTACKS.names())
def test_every_attack_is_registered_under_its_name_and_declares_its_observer(name: str) -> None:
    attack_class = ATTACKS.get(name)

    assert issubclass(attack_class, AttackBase) and attack_class.name == name
    assert attack_class.observer.strip()
    if issubclass(attack_class, HistoryAttack):
        assert attack_class.role in ("client", "server", "any")


@pytest.mark.parametrize("name", ATTACKS.names())
def test_an_unknown_option_is_refused_by_name(name: str) -> None:
    with pytest.raises(ConfigError, match="no_such_option"):
        create_attack(name, no_such_option=1)


def test_an_unknown_attack_lists_the_choices() -> None:
    with pytest.raises(UnknownNameError, match="round_difference"):
        create_attack("no_such_attack")
