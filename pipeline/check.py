"""Store validation (``nncap check STORE [--repair]``): every results table reads back, and every
published graph has its group, a
valid CSR (``indptr`` monotone from 0, indices in range, sorted and unique per row), this schema
version and data that match its content hash. Groups without a catalog record are partial or
abandoned writes: invisible to readers, so the store is still valid, and ``--repair`` removes them,
with temporary catalog files older than ten minutes (left by a writer killed mid-rename).
Published data are never modified."""

from __future__ import annotations

from dataclasses import dataclass, field

from pipeline.store import SCHEMA_VERSION, Store, StoreError


@dataclass
class CheckReport:
    """What ``check_store`` found: ``(graph id, problem)`` pairs, unpublished groups, removals."""

    checked: int = 0
    tables: int = 0
    problems: list[tuple[str, str]] = field(default_factory=list)
    unpublished: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    temporaries: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Every published graph is sound (partial writes do not count: no reader sees them)."""
        return not self.problems

    @property
    def leftovers(self) -> list[str]:
        """Partial writes still on storage."""
        return [n for n in self.unpublished if n not in self.removed]


def check_graph(store: Store, graph_id: str) -> str | None:
    """The first problem of one published graph, or None when it is sound. The store's readers do
    the checking (shapes, CSR invariants, content hash) and report any damage as StoreError."""
    try:
        group = store.group(graph_id)
        if group.attrs.get("schema_version") != SCHEMA_VERSION:
            return f"graph schema version {group.attrs.get('schema_version')}, expected {SCHEMA_VERSION}"
        store.read_csr(group)
        store.verify(graph_id)
    except StoreError as e:
        return str(e)
    return None


def check_store(url: str, repair: bool = False, show_progress: bool = False) -> CheckReport:
    """Validate every published graph and results table; with ``repair``, remove unpublished
    (partial) groups and stale temporary files. ``show_progress``: a progress bar on stderr."""
    from rich.progress import track

    store = Store(url, mode="a" if repair else "r")
    report = CheckReport()
    try:
        records = store.records()
    except StoreError as e:  # a damaged catalog file: nothing else can be checked
        report.problems.append(("catalog", str(e)))
        return report
    for record in track(records, description="check", disable=not show_progress, transient=True):
        report.checked += 1
        problem = check_graph(store, record["id"])
        if problem:
            report.problems.append((record["id"], problem))
    for name in store.tables():
        report.tables += 1
        try:
            store.read_table(name)
        except StoreError as e:
            report.problems.append((f"results/{name}", str(e)))
    report.unpublished = store.unpublished()
    report.temporaries = store.remove_stale_temporaries() if repair else store.stale_temporaries()
    if repair:
        for name in report.unpublished:
            store.remove_unpublished(name)
            report.removed.append(name)
    return report
