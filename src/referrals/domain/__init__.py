"""Pure rules of the referral program. Imports only the standard library."""
