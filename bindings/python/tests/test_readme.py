"""Every ```python block of bindings/python/README.md, and the Python sample of the top
README, is a complete program: each runs as written, in its own process, against the fake
WeChat (WX_APPID, WX_SECRET and WX_API_BASE set as the samples expect)."""

import os
import re
import subprocess
import sys
from typing import List, Tuple

import pytest

from conftest import PKG_ROOT, REPO, SECRET_MARK, secret_for

READMES = [os.path.join(PKG_ROOT, "README.md"), os.path.join(REPO, "README.md")]
FENCE = re.compile(r"^```python[ \t]*\n(.*?)^```[ \t]*$", re.S | re.M)


def python_samples() -> List[Tuple[str, str]]:
    samples = []
    for path in READMES:
        with open(path, encoding="utf-8") as f:
            text = f.read()
        for m in FENCE.finditer(text):
            line = text.count("\n", 0, m.start()) + 1
            samples.append(("%s:%d" % (os.path.relpath(path, REPO), line), m.group(1)))
    return samples


SAMPLES = python_samples()


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
