"""Load at reduced size (make bench runs the full sizes): a zoo through export and β_eff on a local
Dask cluster, and catalog queries over many graphs. Correctness is asserted; timings only reported."""

import pytest

from tests.benchmarks.run import bench_catalog
from tests.benchmarks.zooload import rows, run_load


@pytest.mark.slow
def test_zoo_through_export_and_beta_eff_on_dask(tmp_path):
    figures = run_load(24, tmp_path)  # asserts: every model stored once, β_eff equal across stages
    assert figures["models"] == 24 and figures["edges"] > 0 and figures["hits"] > 0
    assert all(r.startswith("| ") for r in rows(figures))


@pytest.mark.slow
def test_catalog_query_over_many_graphs():
    lines = bench_catalog(400)  # asserts the snapshot query equals a scan of every group
    assert len(lines) == 4 and "400 graphs" in lines[0]
