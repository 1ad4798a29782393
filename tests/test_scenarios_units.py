"""The throttled scenario's AWS route respects what AWS lets an account reserve."""

from __future__ import annotations

import pytest

from scaleorfail.errors import UserError
from scaleorfail.scenarios import aws_throttle_variables


def test_a_sandbox_account_throttles_by_itself() -> None:
    assert aws_throttle_variables(10, 10, 10) == {}  # reserving would need UnreservedConcurrentExecution < 10


def test_a_normal_account_reserves_the_limit_on_embed() -> None:
    assert aws_throttle_variables(10, 1000, 1000) == {"embed_reserved_concurrency": 10}
    assert aws_throttle_variables(10, 1000, 110) == {"embed_reserved_concurrency": 10}  # 100 stay unreserved


@pytest.mark.parametrize(("limit", "unreserved", "minimum"), [(1000, 105, 100), (50, 50, 50)])
def test_an_account_that_cannot_reserve_gets_one_line_with_the_fix(limit: int, unreserved: int, minimum: int) -> None:
    with pytest.raises(UserError) as refused:
        aws_throttle_variables(10, limit, unreserved)
    assert f"keeps at least {minimum} unreserved" in refused.value.cause
    assert "--target local" in refused.value.fix


def test_an_unreadable_account_is_not_guessed() -> None:
    with pytest.raises(UserError, match="GetAccountSettings"):
        aws_throttle_variables(10, None, None)
