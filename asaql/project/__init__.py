"""VS Code Stream Analytics projects (asaproj.json) and their CI/CD test cases (testConfig.json)."""

from asaql.project.loader import AsaProject, load_project, project_job
from asaql.project.testrunner import TestSummary, load_test_config, run_tests

__all__ = ["AsaProject", "TestSummary", "load_project", "load_test_config", "project_job", "run_tests"]
