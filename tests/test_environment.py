import pytest

from core.environment import capture_environment, compare_environment, version_severity


def test_capture_records_python_and_packages():
    env = capture_environment()
    assert env["python_version"].count(".") == 2
    assert {"scikit-learn", "numpy", "scipy", "joblib", "pandas", "skops"} <= set(env["packages"])


@pytest.mark.parametrize(
    ("package", "saved", "current", "severity"),
    [
        ("scikit-learn", "1.9.1", "1.9.1", "ok"),
        ("scikit-learn", "1.9.0", "1.9.1", "ok"),
        ("scikit-learn", "1.5.2", "1.9.1", "warning"),
        ("numpy", "1.26.4", "2.4.6", "error"),
        ("python", "3.10.4", "3.11.7", "warning"),
        ("python", "2.7.18", "3.11.7", "error"),
        ("pandas", "2.2.0", "3.1.1", "warning"),
        ("pandas", "3.0.0", "3.1.1", "ok"),
        ("scikit-learn", "1.5.2", None, "error"),
        ("skops", "0.10.0", None, "warning"),
    ],
)
def test_severity(package, saved, current, severity):
    assert version_severity(package, saved, current) == severity


def test_compare_reports_each_difference_and_worst_status():
    current = capture_environment()
    saved = {
        "python_version": current["python_version"],
        "packages": dict(current["packages"], **{"scikit-learn": "1.5.2", "numpy": "1.26.4"}),
    }
    result = compare_environment(saved)
    assert result.status == "error"
    found = {d.package: (d.saved, d.current, d.severity) for d in result.differences}
    assert found["scikit-learn"][:2] == ("1.5.2", current["packages"]["scikit-learn"])
    assert found["numpy"][2] == "error"
    assert "python" not in found
    assert compare_environment(current).status == "ok"
