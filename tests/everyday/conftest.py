"""Shared data for the everyday-use tests: iris (scikit-learn ships it) as CSV files."""
import csv

import numpy as np
import pytest


def write_csv(path, header, rows):
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return str(path)


@pytest.fixture(name="write_csv")
def write_csv_fixture():
    return write_csv


@pytest.fixture(scope="session")
def iris_csvs(tmp_path_factory):
    """iris_train.csv (120 rows) and iris_test.csv (30 rows), species as text."""
    from sklearn.datasets import load_iris
    iris = load_iris()
    header = [c.replace(" (cm)", "").replace(" ", "_") for c in iris.feature_names] + ["species"]
    rows = [[repr(float(v)) for v in x] + [str(iris.target_names[t])]
            for x, t in zip(iris.data, iris.target)]
    order = np.random.default_rng(0).permutation(len(rows))
    folder = tmp_path_factory.mktemp("iris")
    train = write_csv(folder / "iris_train.csv", header, [rows[i] for i in order[:120]])
    test = write_csv(folder / "iris_test.csv", header, [rows[i] for i in order[120:]])
    return train, test
