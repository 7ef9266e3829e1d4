import pytest

from referrals.adapters.memory import MemoryStore
from referrals.domain.program import RuleVersion
from tests.clocks import FixedClock


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock()


@pytest.fixture
def program() -> RuleVersion:
    return RuleVersion()
