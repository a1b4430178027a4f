"""Fixtures of the loop tests: the training tests' dataset, and test outcomes for teardown."""

import pytest

from tests.training.conftest import colour_dataset  # noqa: F401 - shared fixture


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the test item, so fixtures can tell whether the test failed."""
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)
