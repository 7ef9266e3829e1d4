"""Domain errors carry a stable `code`; the API maps codes to HTTP statuses in one place."""


class DomainError(Exception):
    code = "domain_error"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class InvalidInput(DomainError):
    code = "validation_error"

    def __init__(self, detail: str, field: str | None = None) -> None:
        super().__init__(detail)
        self.field = field  # the input it is about, dotted ("rules.tiers"), if one


class NotFound(DomainError):
    code = "not_found"


class CodeNotFound(NotFound):
    code = "code_not_found"


class AlreadyReferred(DomainError):
    code = "already_referred"


class SelfReferral(DomainError):
    code = "self_referral"


class ReferrerExists(DomainError):
    code = "referrer_exists"


class CodeTaken(DomainError):
    code = "code_taken"


class PayoutInProgress(DomainError):
    code = "payout_in_progress"


class PayoutFailed(DomainError):
    """The run hit a failure of its own (report store down, ...); it can be run again."""

    code = "payout_failed"


class EarlierRunFailed(DomainError):
    """A later month is not paid while an earlier month's run is failed or stopped: its
    rewards are assigned to that run, and paying around it would leave them behind."""

    code = "earlier_run_failed"

    def __init__(self, detail: str, period: str) -> None:
        super().__init__(detail)
        self.period = period  # the earlier month, to run first


class Conflict(Exception):
    """A store saw a concurrent write win a race (unique key, lost condition).

    Not a DomainError: use cases retry on it, and it never reaches a client.
    """


class NotHeld(DomainError):
    """Only a held reward can be approved or rejected."""

    code = "not_held"


class NotReversible(DomainError):
    """A reward being paid out, or already rejected, reversed or clawed back, cannot be
    reversed (a paid one is clawed back)."""

    code = "not_reversible"


class ConversionConflict(DomainError):
    """An external id already recorded for another conversion."""

    code = "conversion_conflict"


class KeyNotActive(DomainError):
    """A revoked or expired API key cannot be rotated."""

    code = "key_not_active"


class Unavailable(DomainError):
    """A service the request needs did not do its part (an AWS API refused or failed):
    nothing was started, and a retry may succeed."""

    code = "unavailable"


class StorageUnavailable(DomainError):
    """The storage cannot take writes now (disk full, read-only, I/O error); nothing was
    written, and a retry succeeds once an operator frees it."""

    code = "storage_unavailable"


class ProgramNotFound(NotFound):
    code = "program_not_found"


class ProgramExists(DomainError):
    code = "program_exists"


class ProgramPaused(DomainError):
    """The program takes no new signups (paused or archived); it keeps paying."""

    code = "program_paused"


class ProgramArchived(DomainError):
    """An archived program stays archived (it can still be renamed)."""

    code = "program_archived"


class ClickNotFound(NotFound):
    """A signup's click id names no click recorded within its program's attribution
    window (forged, mistyped or expired): it attributes nothing."""

    code = "click_not_found"
    field = "click_id"  # the input it is about, as InvalidInput names one


class ClickMismatch(DomainError):
    """A signup sent a referral code and a click id of another referrer's link."""

    code = "click_mismatch"
    field = "click_id"


class SaleNotFound(NotFound):
    """A refund or a dispute names a sale never recorded."""

    code = "sale_not_found"


class SaleConflict(DomainError):
    """A sale's external id already recorded with another body."""

    code = "sale_conflict"


class RefundConflict(DomainError):
    """A refund's external id already recorded with another body."""

    code = "refund_conflict"


class RefundExceedsSale(DomainError):
    """The refunds of a sale would add up to more than the sale."""

    code = "refund_exceeds_sale"


class CurrencyMismatch(InvalidInput):
    """A sale in a currency other than its program's: a program never sums currencies."""

    code = "currency_mismatch"

    def __init__(self, detail: str) -> None:
        super().__init__(detail, field="currency")
