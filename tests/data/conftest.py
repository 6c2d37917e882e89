"""Fixtures shared by the data tests: small synthetic datasets (whole and half stars)."""

from __future__ import annotations

import pytest

from movierec.data.synthetic import generate


@pytest.fixture(scope="module")
def small():
    return generate(n_users=300, n_items=400, n_ratings=15_000, seed=3)


@pytest.fixture(scope="module")
def small_half():
    return generate(n_users=300, n_items=400, n_ratings=15_000, seed=4, half_stars=True)
