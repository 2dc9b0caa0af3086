"""Every complete Python sample of bindings/python/README.md and of the top README (a
```python block marked <!-- test: python -->, found by scripts/readme_samples.py; an unmarked
```python block is an error, so a new sample cannot go untested) runs as written, in its own
process, against the fake WeChat (WX_APPID, WX_SECRET and WX_API_BASE set as the samples
expect)."""

import importlib.util
import os
import subprocess
import sys
from typing import List, Tuple

import pytest

from conftest import PKG_ROOT, REPO, SECRET_MARK, secret_for

READMES = [os.path.join(PKG_ROOT, "README.md"), os.path.join(REPO, "README.md")]


def _samples() -> List[Tuple[str, str]]:
    spec = importlib.util.spec_from_file_location(
        "readme_samples", os.path.join(REPO, "scripts", "readme_samples.py"))
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    found = []
    for path in READMES:
        samples, errors = mod.parse(path, "python")
        assert not errors, errors
        found += [("%s:%s" % (os.path.relpath(path, REPO), s.name), s.code)
                  for s in samples if s.lang == "python"]
    return found


SAMPLES = _samples()


def test_the_readmes_have_python_samples() -> None:
    where = {s[0].split(":")[0] for s in SAMPLES}
    assert where == {"README.md", "bindings/python/README.md"}, where
    assert len(SAMPLES) >= 5


@pytest.mark.parametrize("where,code", SAMPLES, ids=[s[0] for s in SAMPLES])
def test_readme_sample_runs_as_written(where: str, code: str, fake, new_app, tmp_path) -> None:
    appid = new_app("readme", register=False)
    env = dict(os.environ, WX_APPID=appid, WX_SECRET=secret_for(appid),
               WX_API_BASE=fake.base_url, PYTHONPATH=PKG_ROOT)
    script = tmp_path / "sample.py"
    script.write_text(code)
    proc = subprocess.run([sys.executable, str(script)], cwd=str(tmp_path), env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=60)
    assert proc.returncode == 0, "%s:\n%s" % (where, proc.stdout)
    assert SECRET_MARK not in proc.stdout
    assert fake.token_fetches(appid) >= 1, "the sample got a token from WeChat (the fake)"
