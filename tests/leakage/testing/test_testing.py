import pytest

from leakage.errors import ConfigError
from leakage.testing import assert_hides_single_updates, assert_leaks_single_updates

pytest_plugins = ["pytester"]


def test_secure_aggregation_hides_single_updates_among_many_clients() -> None:
    measured = assert_hides_single_updates("secagg", 20)

    assert not measured.individual and measured.leakage <= 0.25
    assert measured.audit_auc is not None and measured.epsilon_lower_bound is not None


def test_secure_aggregation_fails_to_hide_them_among_two() -> None:
    measured = assert_leaks_single_updates("secagg", 2, observer="participant")

    assert measured.individual and measured.leakage > 0.99
    with pytest.raises(AssertionError, match="secagg does not hide single updates: the observer recovered"):
        assert_hides_single_updates("secagg", 2, observer="participant", audit_trials=None)


def test_the_hiding_assertion_can_fail_plain_is_caught() -> None:
    with pytest.raises(AssertionError, match=r"plain does not hide single updates.*leakage 1.00 > 0.25"):
        assert_hides_single_updates("plain", 20, audit_trials=None)
    with pytest.raises(AssertionError, match="expected mpc to leak single updates to the participant"):
        assert_leaks_single_updates("mpc", 2, audit_trials=None)


def test_bad_settings_are_one_line_config_errors() -> None:
    with pytest.raises(ConfigError, match="observers"):
        assert_hides_single_updates("secagg", 4, observer="alice", audit_trials=None)
    with pytest.raises(ConfigError, match="unknown stage 'magic'"):
        assert_hides_single_updates("magic", 4, audit_trials=None)


def test_the_pytest_plugin_gives_users_fixtures(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        def test_hidden(hides_single_updates):
            hides_single_updates("secagg+", 10, audit_trials=None)

        def test_known_weakness(leaks_single_updates):
            leaks_single_updates("secagg", 2, audit_trials=None)

        def test_caught(hides_single_updates):
            hides_single_updates("plain", 10, audit_trials=None)
        """
    )

    result = pytester.runpytest("-p", "no:cacheprovider")

    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*plain does not hide single updates*"])
