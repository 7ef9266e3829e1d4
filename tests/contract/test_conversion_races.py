"""A conversion and the signup of the same user, at the same moment, on every store:
whichever commits first, the other sees it, and the referral is earned exactly once."""

import threading
from concurrent.futures import ThreadPoolExecutor

from referrals.domain.model import ReferralStatus
from referrals.domain.program import RuleVersion, Trigger
from referrals.ports import Store
from referrals.services.conversions import record_conversion
from referrals.services.referrers import enroll
from referrals.services.signups import sign_up
from tests.clocks import FixedClock

ON_PURCHASE = RuleVersion(trigger=Trigger.CONVERSION, referee_reward_cents=500)
USERS = 12


def test_a_conversion_racing_its_signup_always_earns_the_referral(store: Store) -> None:
    clock = FixedClock()
    enroll(store, clock, "alice", code="ALICE-1")

    def race(user: str) -> None:
        start = threading.Barrier(2)

        def convert() -> None:
            start.wait()
            record_conversion(store, clock, ON_PURCHASE, user, "purchase", f"o-{user}", 100)

        def signup() -> None:
            start.wait()
            sign_up(store, clock, ON_PURCHASE, user, "ALICE-1")

        with ThreadPoolExecutor(2) as pair:
            for done in [pair.submit(convert), pair.submit(signup)]:
                done.result()

    for n in range(USERS):
        race(f"u{n}")
    with store.read() as uow:
        for n in range(USERS):
            referral = uow.referrals.by_referee(f"u{n}")
            assert referral is not None and referral.status is ReferralStatus.PENDING, n
            [bonus] = uow.rewards.for_referral(referral.id)  # the referee's, once
            assert bonus.cents == 500
