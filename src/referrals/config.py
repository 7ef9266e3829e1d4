"""The one settings class. Nothing else reads the environment."""

from pydantic import field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from referrals.domain.errors import InvalidInput
from referrals.domain.tiers import TierSchedule


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="REFERRALS_", extra="ignore")

    database_url: str = "sqlite:///./referrals.db"
    tiers: str = "1:1000,5:1500,10:2000,25:2500"
    auto_enroll: bool = True
    max_body_bytes: int = 64 * 1024
    pool_size: int = 5

    @field_validator("tiers")
    @classmethod
    def _valid_tiers(cls, value: str) -> str:
        try:
            TierSchedule.parse(value)
        except InvalidInput as error:
            raise ValueError(error.detail) from None
        return value
