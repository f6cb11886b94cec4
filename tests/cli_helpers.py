"""Run the nncap CLI in a subprocess, as a user would."""

import os
import subprocess
import sys


def nncap(*args, check=True, env=None, timeout=300):
    full_env = {**os.environ, "OMP_WAIT_POLICY": "passive", **(env or {})}
    proc = subprocess.run([sys.executable, "-m", "pipeline.cli", *map(str, args)], capture_output=True,
                          text=True, env=full_env, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"nncap {' '.join(map(str, args))} failed ({proc.returncode}):\n{proc.stderr}")
    return proc
