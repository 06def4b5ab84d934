"""The shared boundary checks: what each accepts, and the one-line error for the rest."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from leakage.checks import (
    require_bool,
    require_choice,
    require_in_interval,
    require_int,
    require_nonnegative_float,
    require_optional_int,
    require_positive_float,
)
from leakage.errors import ConfigError

# Values of many types, so the property tests see strings, numbers, bools, None and containers.
ANY_VALUE = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    st.lists(st.integers(), max_size=3),
)

# Every check that takes a number, called with a value that would pass if it were not a bool.
NUMBER_CHECKS: dict[str, Callable[[object], object]] = {
    "require_int": lambda value: require_int("field", value, minimum=0),
    "require_int with maximum": lambda value: require_int("field", value, minimum=0, maximum=5),
    "require_optional_int": lambda value: require_optional_int("field", value, minimum=0),
    "require_positive_float": lambda value: require_positive_float("field", value),
    "require_nonnegative_float": lambda value: require_nonnegative_float("field", value),
    "require_in_interval": lambda value: require_in_interval("field", value, 0, 1),
}


def test_a_failed_check_is_a_config_error_and_so_a_value_error() -> None:
    with pytest.raises(ValueError, match="field must be an integer >= 1, got 0") as error:
        require_int("field", 0, minimum=1)

    assert isinstance(error.value, ConfigError)


@given(choices=st.lists(st.text(max_size=6), min_size=1, max_size=5, unique=True), data=st.data())
def test_any_value_among_the_choices_is_returned(choices: list[str], data: st.DataObject) -> None:
    value = data.draw(st.sampled_from(choices))

    assert require_choice("field", value, choices) == value


@given(choices=st.lists(st.text(max_size=6), min_size=1, max_size=5, unique=True), value=ANY_VALUE)
def test_any_value_not_among_the_choices_raises_naming_field_choices_and_value(
    choices: list[str], value: object
) -> None:
    if value in choices:
        return

    with pytest.raises(ConfigError) as error:
        require_choice("field", value, choices)

    assert str(error.value) == f"field must be one of {', '.join(choices)}, got {value!r}"


@pytest.mark.parametrize(("value", "choices"), [(True, (1, 2)), (1, (True, False)), (2.0, (2, 3))])
def test_a_choice_matches_only_values_of_its_own_type(value: object, choices: tuple[object, ...]) -> None:
    with pytest.raises(ConfigError, match="field must be one of"):
        require_choice("field", value, choices)


@pytest.mark.parametrize("check", NUMBER_CHECKS.values(), ids=list(NUMBER_CHECKS))
@given(flag=st.booleans())
def test_bools_are_never_accepted_as_numbers(check: Callable[[object], object], flag: bool) -> None:
    with pytest.raises(ConfigError, match=re.escape(f"got {flag!r}")):
        check(flag)


@given(value=ANY_VALUE)
def test_only_true_and_false_pass_as_a_flag(value: object) -> None:
    if isinstance(value, bool):
        assert require_bool("field", value) is value
        return
    with pytest.raises(ConfigError, match=re.escape(f"field must be true or false, got {value!r}")):
        require_bool("field", value)


@pytest.mark.parametrize("value", [1, 0, "yes", np.bool_(True), None])
def test_truthy_stand_ins_are_not_flags(value: object) -> None:
    with pytest.raises(ConfigError, match="field must be true or false"):
        require_bool("field", value)


@given(value=st.integers(min_value=-50, max_value=50))
def test_an_integer_passes_exactly_when_it_lies_in_the_range(value: int) -> None:
    inside = 0 <= value <= 10

    if inside:
        assert require_int("field", value, minimum=0, maximum=10) == value
        assert require_optional_int("field", value, minimum=0, maximum=10) == value
    else:
        with pytest.raises(ConfigError, match=re.escape(f"field must be an integer in [0, 10], got {value}")):
            require_int("field", value, minimum=0, maximum=10)
        with pytest.raises(ConfigError, match=re.escape(f"in [0, 10] or None, got {value}")):
            require_optional_int("field", value, minimum=0, maximum=10)


@pytest.mark.parametrize("value", [2.0, "3", None, [1]])
def test_require_int_refuses_what_is_not_an_integer(value: object) -> None:
    with pytest.raises(ConfigError, match=re.escape(f"field must be an integer >= 1, got {value!r}")):
        require_int("field", value, minimum=1)


def test_numpy_integers_pass_and_come_back_as_python_ints() -> None:
    value = require_int("field", np.int64(3), minimum=1)
    optional = require_optional_int("field", np.int32(4), minimum=1)

    assert type(value) is int and value == 3
    assert type(optional) is int and optional == 4


def test_none_means_unset_only_for_the_optional_integer() -> None:
    assert require_optional_int("field", None, minimum=1) is None
    with pytest.raises(ConfigError, match="field must be an integer >= 1, got None"):
        require_int("field", None, minimum=1)


@pytest.mark.parametrize(
    ("check", "value", "message"),
    [
        (require_positive_float, 0.0, "field must be a finite number > 0, got 0.0"),
        (require_positive_float, math.inf, "field must be a finite number > 0, got inf"),
        (require_positive_float, "1", "field must be a finite number > 0, got '1'"),
        (require_nonnegative_float, -0.5, "field must be a finite number >= 0, got -0.5"),
        (require_nonnegative_float, math.nan, "field must be a finite number >= 0, got nan"),
        (require_nonnegative_float, None, "field must be a finite number >= 0, got None"),
    ],
)
def test_half_line_checks_name_field_bound_and_value(
    check: Callable[[str, object], float], value: object, message: str
) -> None:
    with pytest.raises(ConfigError, match=f"^{re.escape(message)}$"):
        check("field", value)


@given(value=st.floats(allow_nan=False, allow_infinity=False) | st.integers())
def test_half_line_checks_accept_exactly_the_finite_numbers_above_zero(value: float) -> None:
    for check, accepts in ((require_positive_float, value > 0), (require_nonnegative_float, value >= 0)):
        if accepts:
            result = check("field", value)
            assert type(result) is float and result == float(value)
        else:
            with pytest.raises(ConfigError):
                check("field", value)


@pytest.mark.parametrize(
    ("inclusive", "written", "accepts_low", "accepts_high"),
    [("both", "[0, 1]", True, True), ("left", "[0, 1)", True, False),
     ("right", "(0, 1]", False, True), ("neither", "(0, 1)", False, False)],
)
def test_an_interval_includes_the_ends_it_says(
    inclusive: Any, written: str, accepts_low: bool, accepts_high: bool
) -> None:
    for end, accepts in ((0, accepts_low), (1, accepts_high)):
        if accepts:
            assert require_in_interval("field", end, 0, 1, inclusive=inclusive) == end
        else:
            with pytest.raises(ConfigError, match=re.escape(f"field must be a number in {written}, got {end}")):
                require_in_interval("field", end, 0, 1, inclusive=inclusive)


@given(value=st.floats(allow_nan=True, allow_infinity=True))
def test_a_value_passes_an_interval_exactly_when_it_lies_inside(value: float) -> None:
    inside = 0.5 <= value < 1

    if inside:
        assert require_in_interval("field", value, 0.5, 1, inclusive="left") == value
    else:
        with pytest.raises(ConfigError, match=re.escape(f"field must be a number in [0.5, 1), got {value!r}")):
            require_in_interval("field", value, 0.5, 1, inclusive="left")


def test_an_interval_message_can_say_what_the_number_is() -> None:
    with pytest.raises(ConfigError, match=r"^dropout must be a probability in \[0, 1\), got 1.0$"):
        require_in_interval("dropout", 1.0, 0, 1, inclusive="left", what="a probability")


def test_numpy_reals_pass_an_interval_as_python_floats() -> None:
    value = require_in_interval("field", np.float32(0.5), 0, 1)

    assert type(value) is float and value == 0.5
