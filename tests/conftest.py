"""Settings every test module shares."""

from hypothesis import HealthCheck, settings

# Hypothesis's too_slow health check times how long drawing the examples takes: on a
# loaded 2-core machine (the database servers, a second test run) it measures the load,
# not the test, and failed tests whose draws are small. The examples drawn are the same.
settings.register_profile("project", suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("project")
