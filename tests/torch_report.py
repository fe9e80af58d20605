"""The largest relative error against PyTorch each layer test saw, printed with -s."""
import pytest


def worst_error_reporter(worst: dict):
    """A module fixture printing ``worst`` ((layer type, dtype) -> error) at the end."""
    @pytest.fixture(scope="module", autouse=True)
    def report_worst():
        yield
        if worst:
            print("\nlargest relative error vs PyTorch:")
            for (name, dtype), err in sorted(worst.items()):
                print(f"  {name:24s} {dtype:8s} {err:.2e}")
    return report_worst
