"""The README's Python example runs as written (against a store holding the quickstart's networks)."""

import re
from pathlib import Path


from pipeline.importers import ImportOptions, import_source

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_quickstart_is_two_commands():
    text = README.read_text()
    block = re.search(r"## Quickstart\s+```bash\n(.*?)```", text, re.S).group(1)
    commands = [line.split("#")[0].strip() for line in block.splitlines() if line.split("#")[0].strip()]
    assert commands == ["make run", "make test"]


def test_readme_python_example_runs(tmp_path, monkeypatch):
    store = tmp_path / "nncap-store.zarr"
    for name in ("power", "serengeti-foodweb"):
        import_source(str(store), f"gt:{name}", ImportOptions())
    code = re.search(r"```python\n(.*?)```", README.read_text(), re.S).group(1)
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(compile(code, "README.md", "exec"), scope)
    assert scope["P"].shape == (4941, 4941)
    assert len(scope["sub"].nodes) >= 2 and len(scope["grazers"].nodes) > 0
    assert list(scope["names"].columns) == ["name"]
