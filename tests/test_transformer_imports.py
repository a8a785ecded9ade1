"""Importing the model package imports no CLI, progress-bar or network code."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

PLUMBING = {"click", "tqdm", "huggingface_hub", "requests", "urllib3", "httpx", "matplotlib"}


@pytest.mark.parametrize("module", ["transformer", "transformer.model", "transformer.train", "transformer.score"])
def test_importing_imports_no_plumbing(module):
    code = f"import json, sys, {module}; print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}})))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(json.loads(result.stdout))
    assert not loaded & PLUMBING, f"import {module} loaded {sorted(loaded & PLUMBING)}"
