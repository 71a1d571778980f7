"""Run the test suite's GPU tests on a GPU machine and record the outcome in eval/results/gpu_tests.json.

    python eval/gpu_tests.py [--record PATH] [PYTEST ARGS...]     (default: tests/test_gpu.py)
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

import record


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--record", help="result file (default eval/results/gpu_tests.json)")
    args, pytest_args = p.parse_known_args(argv)
    junit = Path(tempfile.mkdtemp()) / "junit.xml"
    code = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={junit}",
                           *(pytest_args or ["tests/test_gpu.py"])]).returncode
    tests = []
    for case in ET.parse(junit).iter("testcase"):
        outcome = next((c.tag for c in case if c.tag in ("failure", "error", "skipped")), "passed")
        tests.append({"test": f"{case.get('classname')}::{case.get('name')}", "outcome": outcome,
                      "seconds": float(case.get("time", 0))})
    print(f"wrote {record.write('gpu_tests', {'exit_code': code, 'tests': tests}, args.record)}")
    return code


if __name__ == "__main__":
    sys.exit(main())
